-- POST /api/v1/queue/join with a new session_id on every request, so every request takes a new
-- place in the queue (201), never a refresh of a standing one.
--
--   wrk -s loadtest/wrk/join.lua http://HOST:PORT -- <run prefix> [event_id]
--
-- session_id = "<run prefix>-<thread>-<counter>": the prefix (pass something unique per run, e.g.
-- a timestamp and $RANDOM) keeps runs against the same Redis from colliding.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local prefix, event
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  prefix = args[1] or (tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9)))
  event = args[2] or "bench"
end

function request()
  counter = counter + 1
  local body = string.format('{"event_id":"%s","session_id":"%s-%d-%d"}', event, prefix, id, counter)
  return wrk.format("POST", "/api/v1/queue/join", headers, body)
end

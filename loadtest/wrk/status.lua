-- GET /api/v1/queue/status with "Authorization: Bearer <waiting token>", cycling through the
-- tokens of a file (one a line, optionally followed by a space and the token's poll_hint, which
-- is then sent as ?hint=), each thread starting at a different offset.
--
--   wrk -s loadtest/wrk/status.lua http://HOST:PORT -- <tokens file>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local reqs = {}
local i = 0

function init(args)
  local path = args[1] or error("usage: wrk -s status.lua URL -- <tokens file>")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then
      -- "token" or "token hint": with a hint, the read passes it as ?hint= (poll_hint)
      local token, hint = line:match("^(%S+)%s+(%S+)$")
      local path = "/api/v1/queue/status"
      if hint then path = path .. "?hint=" .. hint else token = line end
      reqs[#reqs + 1] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
    end
  end
  f:close()
  assert(#reqs > 0, "no tokens in " .. path)
  i = ((id or 1) * 7919) % #reqs
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

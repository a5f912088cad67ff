-- GET /healthz: the HTTP baseline (no Redis). Usage: wrk -s loadtest/wrk/healthz.lua http://HOST:PORT
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local req
function init(args)
  req = wrk.format("GET", "/healthz")
end

function request()
  return req
end

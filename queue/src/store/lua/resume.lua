-- resume: ARGV[3] = when the pause began, ARGV[4] = when it ended (Unix ms). The queue stood
-- still in between (MAINTENANCE_MODE: nobody could poll, nobody was admitted), so nobody's idle
-- timeout counts that time and every READY slot's deadline moves on by it. Idempotent per pause
-- (the same begin twice is applied once). Reply: {1 applied | 0 already or empty | -1}.
--
-- Heartbeats are not rewritten (that would be O(waiting)): the pause is recorded once and
-- `beat` in lib.lua credits it when a heartbeat is read. Pauses add up; a heartbeat between two
-- pauses is credited with both, at most up to the last pause's end.
local c = load_cfg()
if not c then return {-1} end
local from_ms, until_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HGET', EV, 'p_from') == ARGV[3] or until_ms <= from_ms then return {0} end
local len_s = math.floor(until_ms / 1000) - math.floor(from_ms / 1000)
redis.call('HSET', EV, 'p_from', ARGV[3], 'p_end', math.floor(until_ms / 1000),
  'p_len', c.p_len + len_s)
-- READY slots: at most max_active of them.
local r = redis.call('ZRANGE', R, 0, -1, 'WITHSCORES')
for i = 1, #r, 2 do
  redis.call('ZADD', R, tonumber(r[i + 1]) + (until_ms - from_ms), r[i])
end
return {1}

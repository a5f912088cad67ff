-- leave: ARGV[3] = ticket, ARGV[4] = session digest.
-- Reply: {1 removed | 0 nothing held | -1 unknown event}. Leaving frees a READY or ADMITTED slot too.
local c = load_cfg()
if not c then return {-1} end
local t, d = tonumber(ARGV[3]), ARGV[4]
local s = redis.call('ZSCORE', Q, d)
if s then
  if tonumber(s) % TBITS ~= t then return {0} end
  drop_waiting(d, t, redis.call('ZRANK', Q, d))
  return {1}
end
if tonumber(redis.call('HGET', TK, d)) == t then
  local held = redis.call('ZREM', R, d) + redis.call('ZREM', A, d)
  redis.call('HDEL', TK, d)
  if held > 0 then return {1} end
end
return {0}

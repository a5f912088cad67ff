-- enter: ARGV[3] = ticket, ARGV[4] = session digest. Reply: {1 granted | 0 not granted |
-- -1 unknown event, ticket, place...}; when granted the place is {ADMITTED, 0, valid_until_ms}.
-- A second call returns the first grant.
local c = load_cfg()
if not c then return {-1} end
local t, d = tonumber(ARGV[3]), ARGV[4]
if tonumber(redis.call('HGET', TK, d)) == t then
  local valid_until = tonumber(redis.call('ZSCORE', A, d))
  if valid_until and valid_until > NOW then
    -- A write that changes nothing, so that a WAIT after a repeated enter covers the first
    -- grant (see join.lua).
    redis.call('HINCRBY', EV, 'entered', 0)
    return reply(c, 1, t, {ADMITTED, 0, valid_until})
  end
end
local p = place(c, t, d, true)
if p[1] ~= READY then
  return reply(c, 0, t, p)
end
local valid_until = NOW + c.attl * 1000
redis.call('ZREM', R, d)
redis.call('ZADD', A, valid_until, d)
redis.call('HINCRBY', EV, 'entered', 1)
return reply(c, 1, t, {ADMITTED, 0, valid_until})

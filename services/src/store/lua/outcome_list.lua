-- The kept outcomes due by ARGV[1] (ms), earliest first, ARGV[3] of them from offset ARGV[2].
-- KEYS as in outcome_put.lua. Returns {intent id, due ms, outcome} per outcome.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', ARGV[2], ARGV[3])
local out = {}
for i = 1, #ids, 2 do
  out[#out + 1] = {ids[i], ids[i + 1], redis.call('HGET', KEYS[2], ids[i]) or ''}
end
return out

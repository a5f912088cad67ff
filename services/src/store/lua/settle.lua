-- ARGV: prefix, now, intent_id, status, failure_code. Records the outcome of a pending intent.
-- Replies {0, changed, intent...} or {-4} not found.
local k = ikey(ARGV[3])
if redis.call('EXISTS', k) == 0 then return {-4} end
if tonumber(redis.call('HGET', k, 'st')) ~= 1 then return reply(0, 0, k) end
redis.call('HSET', k, 'st', ARGV[4], 'fc', ARGV[5], 'sat', NOW)
return reply(0, 1, k)

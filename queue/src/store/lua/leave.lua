-- leave: KEYS[6] = session bucket; ARGV[3] = ticket, ARGV[4] = session field.
-- Reply: {1 removed | 0 nothing held | -1 unknown event}. Leaving frees a READY or ADMITTED slot too.
local c = load_cfg()
if not c then return {-1} end
local t = tonumber(ARGV[3])
local removed = redis.call('ZREM', R, t) + redis.call('ZREM', A, t)
local rank = redis.call('ZRANK', Q, t)
if rank then
  drop_waiting(t, rank)
  removed = removed + 1
end
if tonumber(redis.call('HGET', KEYS[6], ARGV[4])) == t then
  redis.call('HDEL', KEYS[6], ARGV[4])
end
if removed > 0 then return {1} end
return {0}

-- ARGV: prefix, now, reservation_id, status (3 cancelled, 4 expired), only_if_due (0/1).
-- Replies {0, changed, reservation...}, {-4} not found, {-6, 2} confirmed, {-7} not due yet.
local id = ARGV[3]
local k = rkey(id)
if redis.call('EXISTS', k) == 0 then return {-4} end
local st = tonumber(redis.call('HGET', k, 'st'))
if st == 3 or st == 4 then return reply(0, 0, k) end
if st == 2 then return {-6, st} end
if ARGV[5] == '1' and tonumber(redis.call('HGET', k, 'exp')) > NOW then return {-7} end
release(id, tonumber(ARGV[4]))
return reply(0, 1, k)

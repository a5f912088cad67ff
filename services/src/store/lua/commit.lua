-- ARGV: prefix, now, reservation_id, payment_intent_id, order_id.
-- Sells the seats only if this reservation still holds every one of them.
-- Replies {0, changed, reservation...}, {-4} not found, {-5} hold expired (released now),
-- {-6, status} not pending, {-3, seat} a seat is not held by it.
local id = ARGV[3]
local k = rkey(id)
if redis.call('EXISTS', k) == 0 then return {-4} end
local st = tonumber(redis.call('HGET', k, 'st'))
if st == 2 then return reply(0, 0, k) end
if st ~= 1 then return {-6, st} end
if tonumber(redis.call('HGET', k, 'exp')) <= NOW then
  release(id, 4)
  return {-5}
end
local seats = split(redis.call('HGET', k, 'seats'))
for _, s in ipairs(seats) do
  if redis.call('HGET', K_SEAT, s) ~= 'H:' .. id then return {-3, s} end
end
for _, s in ipairs(seats) do redis.call('HSET', K_SEAT, s, 'S:' .. id) end
redis.call('HSET', k, 'st', 2, 'pid', ARGV[4], 'oid', ARGV[5], 'cfat', NOW)
redis.call('ZREM', K_HOLDS, id)
return reply(0, 1, k)

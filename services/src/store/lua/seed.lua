-- ARGV: prefix, now, event_id, price_cents, currency, then (seat_id, score) pairs.
-- Creates the event if needed; adds only seats that do not exist (held or sold stay so).
if redis.call('EXISTS', K_EV) == 0 then
  redis.call('HSET', K_EV, 'id', ARGV[3], 'price', ARGV[4], 'cur', ARGV[5], 'total', 0)
end
local added = 0
for i = 6, #ARGV - 1, 2 do
  local s = ARGV[i]
  if redis.call('HSETNX', K_SEAT, s, 'F') == 1 then
    redis.call('HSET', K_POS, s, ARGV[i + 1])
    redis.call('ZADD', K_FREE, ARGV[i + 1], s)
    added = added + 1
  end
end
redis.call('HINCRBY', K_EV, 'total', added)
return added

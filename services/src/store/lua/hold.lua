-- ARGV: prefix, now, reservation_id, event_id, user_id, idem slot, fingerprint, quantity,
-- hold_ms, idem_ms, then specific seat ids (validated, distinct) or none.
-- Holds all requested seats or none: a seat is held only if it is free.
-- Replies {0, 1, reservation...} created, {0, 0, reservation...} replayed, {-1} no event,
-- {-2} key reused with other parameters, {-3, seat...} seats unavailable.
if redis.call('EXISTS', K_EV) == 0 then return {-1} end
local idem = P .. 'idem:' .. ARGV[6]
-- The slot holds `reservation_id|forget_at_ms`: the window follows the caller's clock; the
-- key's own TTL only collects garbage.
local prev = redis.call('GET', idem)
if prev then
  local rid, till = string.match(prev, '^(.*)|(%d+)$')
  if rid and tonumber(till) > NOW and redis.call('EXISTS', rkey(rid)) == 1 then
    if redis.call('HGET', rkey(rid), 'fp') ~= ARGV[7] then return {-2} end
    return reply(0, 0, rkey(rid))
  end
end
local id = ARGV[3]
local qty = tonumber(ARGV[8])
local seats = {}
if #ARGV >= 11 then
  local bad = {-3}
  for i = 11, #ARGV do
    if redis.call('HGET', K_SEAT, ARGV[i]) ~= 'F' then bad[#bad + 1] = ARGV[i] end
    seats[#seats + 1] = ARGV[i]
  end
  if #bad > 1 then return bad end
  for _, s in ipairs(seats) do redis.call('ZREM', K_FREE, s) end
else
  if redis.call('ZCARD', K_FREE) < qty then return {-3} end
  seats = redis.call('ZRANGE', K_FREE, 0, qty - 1)
  redis.call('ZREMRANGEBYRANK', K_FREE, 0, qty - 1)
end
for _, s in ipairs(seats) do redis.call('HSET', K_SEAT, s, 'H:' .. id) end
local exp = NOW + tonumber(ARGV[9])
local ev = redis.call('HMGET', K_EV, 'price', 'cur')
redis.call('HSET', rkey(id), 'id', id, 'ev', ARGV[4], 'user', ARGV[5], 'st', 1,
  'seats', table.concat(seats, ','), 'price', ev[1], 'cur', ev[2], 'cat', NOW, 'exp', exp,
  'fp', ARGV[7])
redis.call('ZADD', K_HOLDS, exp, id)
redis.call('SET', idem, id .. '|' .. (NOW + tonumber(ARGV[10])), 'PX', tonumber(ARGV[10]))
return reply(0, 1, rkey(id))

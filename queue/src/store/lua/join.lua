-- join: KEYS[6] = session bucket; ARGV[3] = session field, ARGV[4] = pre-queue score.
-- Reply: {1 new | 0 existing | -1 unknown event | -2 closed, ticket, place...}.
-- A session whose ticket still stands gets it back (a refresh never takes a second place);
-- one whose ticket is gone joins again at the back.
local c = load_cfg()
if not c then return {-1} end
if c.sold then return {-2} end
local sb, sf = KEYS[6], ARGV[3]
local old = tonumber(redis.call('HGET', sb, sf))
if old then
  local p = place(c, old, true)
  if p[1] ~= EXPIRED then
    -- Rewrite the session's field (same value) so that this call always replicates something:
    -- a WAIT after it then also covers the first join's writes, which may not have reached a
    -- replica yet (Redis waits for the offset of this connection's last write only).
    redis.call('HSET', sb, sf, old)
    return reply(c, 0, old, p)
  end
end
local t = redis.call('INCR', SEQ)
-- Arrival order is the ticket. In the pre-queue the score is a secret uniform draw below every
-- ticket, so at opening the pre-queue is a uniform shuffle placed ahead of later arrivals.
local score = t
if pre_queue(c) then score = ARGV[4] end
redis.call('ZADD', Q, score, t)
redis.call('HSET', sb, sf, t)
redis.call('HSET', hb_key(t), t % BUCKET, NOW_S)
-- The newest ticket is last in the queue (pre-queue draws all sort below it): no ZRANK needed.
local expires = (NOW_S + c.idle) * 1000
if pre_queue(c) then
  return reply(c, 1, t, {PRE_QUEUE, 0, expires})
end
return reply(c, 1, t, {WAITING, redis.call('ZCARD', Q), expires})

-- join: a batch of N >= 1 joins of one event, applied in order exactly as N calls would be.
-- KEYS[6..5+N] = the session bucket of each join (repeats allowed); ARGV[2+2i-1], ARGV[2+2i] =
-- its session field and pre-queue score (i = 1..N).
-- Reply: {-1} unknown event | {-2} closed | {rate_m, aps, flags, opens, then per join:
-- code (1 new, 0 existing), ticket, status, position, expires_at}.
-- A batch is one script call, so the whole group costs one round trip and one WAIT (the group
-- commit of joins); a session whose ticket still stands gets it back (a refresh never takes a
-- second place), also when it appears twice in one batch; one whose ticket is gone joins again
-- at the back.
local c = load_cfg()
if not c then return {-1} end
if c.sold then return {-2} end
local pre = pre_queue(c)
local out = {c.rate_m, c.aps, flags(c), c.opens or -1}
local n = #KEYS - 5
local expires = (NOW_S + c.idle) * 1000
local qlen = nil
for i = 1, n do
  local sb, sf = KEYS[5 + i], ARGV[1 + 2 * i]
  local old = tonumber(redis.call('HGET', sb, sf))
  local p = nil
  if old then
    p = place(c, old, true)
    if p[1] == EXPIRED then
      p = nil
      qlen = nil
    else
      -- Rewrite the session's field (same value) so that this call always replicates
      -- something: a WAIT after it then also covers the first join's writes, which may not have
      -- reached a replica yet (Redis waits for the offset of this connection's last write).
      redis.call('HSET', sb, sf, old)
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 0, old, p[1], p[2], p[3]
    end
  end
  if not p then
    local t = redis.call('INCR', SEQ)
    -- Arrival order is the ticket. In the pre-queue the score is a secret uniform draw below
    -- every ticket, so at opening the pre-queue is a uniform shuffle placed ahead of later
    -- arrivals.
    local k = #out
    if pre then
      redis.call('ZADD', Q, ARGV[2 + 2 * i], t)
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, PRE_QUEUE, 0, expires
    else
      redis.call('ZADD', Q, t, t)
      -- The newest ticket is last in the queue (pre-queue draws all sort below it): its place
      -- is the queue's length, counted once per batch and then by the joins it added.
      if qlen then qlen = qlen + 1 else qlen = redis.call('ZCARD', Q) end
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, WAITING, qlen, expires
    end
    redis.call('HSET', sb, sf, t)
    redis.call('HSET', hb_key(t), t % BUCKET, NOW_S)
  end
end
return out

-- join: a batch of N >= 1 joins of one event, applied in order exactly as N calls would be.
-- ARGV[2+2i-1], ARGV[2+2i] = the session digest of join i and its pre-queue draw (i = 1..N).
-- Reply: {-1} unknown event | {-2} closed or out of tickets | {rate_m, aps, flags, opens, epoch, then
-- per join: code (1 new, 0 existing), ticket, status, position, expires_at}.
-- A batch is one script call, so the whole group costs one round trip and one WAIT (the group
-- commit of joins); a session whose ticket still stands gets it back (a refresh never takes a
-- second place), also when it appears twice in one batch; one whose ticket is gone joins again
-- at the back.
local c = load_cfg()
if not c then return {-1} end
if c.sold then return {-2} end
local n = (#ARGV - 2) / 2
-- Checked once for the batch, so that a batch is refused whole rather than half applied.
if (tonumber(redis.call('GET', SEQ)) or 0) + n >= TBITS then return {-2} end
local pre = pre_queue(c)
local out = {c.rate_m, c.aps, flags(c), c.opens or -1, c.epoch}
local expires = (NOW_S + c.idle) * 1000
local qlen = nil
local wrote = false
for i = 1, n do
  local d = ARGV[1 + 2 * i]
  local s = redis.call('ZSCORE', Q, d)
  local old = nil
  if s then old = tonumber(s) % TBITS else old = tonumber(redis.call('HGET', TK, d)) end
  local p = nil
  if old then
    p = place(c, old, d, true, s)
    if p[1] == EXPIRED then
      -- A lapsed READY slot or admission ends here, so the session is in one set at a time.
      if not s then drop_slot(d) end
      p = nil
      qlen = nil
      wrote = true
    else
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 0, old, p[1], p[2], p[3]
    end
  end
  if not p then
    local t = redis.call('INCR', SEQ)
    wrote = true
    -- Arrival order is the ticket. In the pre-queue the score is a secret uniform draw below
    -- every ticket, so at opening the pre-queue is a uniform shuffle placed ahead of later
    -- arrivals (equal draws keep arrival order).
    local k = #out
    if pre then
      redis.call('ZADD', Q, tonumber(ARGV[2 + 2 * i]) * TBITS + t, d)
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, PRE_QUEUE, 0, expires
    else
      redis.call('ZADD', Q, t, d)
      -- The newest ticket is last in the queue (pre-queue draws all sort below it): its place
      -- is the queue's length, counted once per batch and then by the joins it added.
      if qlen then qlen = qlen + 1 else qlen = redis.call('ZCARD', Q) end
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, WAITING, qlen, expires
    end
    redis.call('HSET', hb_key(t), t % BUCKET, NOW_S)
  end
end
-- A batch of refreshes only may have written nothing; one write that changes nothing makes
-- the WAIT after this call also cover the writes it answers about, which may not have reached a
-- replica yet (Redis waits for the offset of this connection's last write).
if not wrote then redis.call('HINCRBY', EV, 'joins', 0) end
return out

-- admit: one admission tick, run by every gateway replica (ARGV[3] unused). `fifo` and `reject`
-- take the head of the queue; `random` draws (see below); `passthrough` fills every free slot,
-- without the token bucket.
-- Reply: {admitted, ready_expired, waiting, ready, active} or {-1} for an unknown event.
--
-- The token bucket lives in the event hash, in milli-tokens so that Lua and Rust agree exactly:
-- all replicas draw from one bucket, so N replicas never admit N times the rate. Its capacity is
-- one second of admissions (the largest burst allowed). A replica whose clock runs behind cannot
-- refill twice: time only moves the bucket forward (tb_ts = max(tb_ts, NOW)).
local c = load_cfg()
if not c then return {-1} end
-- Lapsed READY slots and admissions end, with their session entries (at most max_active of
-- them, bounded work).
local function expire(set)
  local gone = redis.call('ZRANGEBYSCORE', set, '-inf', NOW)
  for i = 1, #gone do
    redis.call('ZREM', set, gone[i])
    redis.call('HDEL', TK, gone[i])
  end
  return #gone
end
local ready_expired = expire(R)
expire(A)
local tokens, tb_ts = bucket(c)
local st = redis.call('HMGET', EV, 'admitted', 'w_start', 'w_cur', 'w_prev', 'tick_ts', 'rnd')
local admitted_total = tonumber(st[1]) or 0
local w_start, w_cur, w_prev = tonumber(st[2]) or 0, tonumber(st[3]) or 0, tonumber(st[4]) or -1
-- The time since the last tick (joins admitted at once move tb_ts, so it is kept apart).
local dt = 0
if st[5] then dt = math.max(0, NOW - tonumber(st[5])) end
local rnd = tonumber(st[6])
local n = 0
local passthrough = c.qm == PASSTHROUGH
local paused = c.stopped or c.sold or (c.aps == 0 and not passthrough) or pre_queue(c)
if not paused then
  local room = c.max - redis.call('ZCARD', R) - redis.call('ZCARD', A)
  local want = room
  if not passthrough then want = math.min(math.floor(tokens / 1000), room) end
  local deadline = NOW + c.rto * 1000
  -- Idle users not yet swept are skipped, not admitted: they would only hold a slot until the
  -- ready timeout.
  local function let_in(d, t)
    local last = hb_del(t, true)
    if not idle(c, last) then
      redis.call('ZADD', R, deadline, d)
      redis.call('HSET', TK, d, t)
      n = n + 1
    end
  end
  local gone = 0
  if c.qm == RANDOM then
    -- The lottery: the priority lane first (in order), then each admission draws one of those
    -- waiting uniformly, by rank, from the event's own generator (random_draw in lib.lua), so
    -- the in-memory store draws the same. Each draw logs the rank it took, so positions
    -- derived from the departure log stay exact.
    while want > n do
      local size = redis.call('ZCARD', Q)
      if size == 0 then break end
      local head = redis.call('ZRANGE', Q, 0, 0, 'WITHSCORES')
      local idx = 0
      if tonumber(head[2]) >= PRIO_END then
        local draw
        draw, rnd = random_draw(c, rnd)
        idx = math.fmod(draw, size)
      end
      local pick = redis.call('ZRANGE', Q, idx, idx, 'WITHSCORES')
      redis.call('ZREM', Q, pick[1])
      log_departure('r' .. (idx + 1))
      let_in(pick[1], tonumber(pick[2]) % TBITS)
    end
  else
    while want > n do
      local popped = redis.call('ZPOPMIN', Q, want - n)
      if #popped == 0 then break end
      gone = gone + #popped / 2
      for i = 1, #popped, 2 do
        let_in(popped[i], tonumber(popped[i + 1]) % TBITS)
      end
    end
  end
  if gone > 0 then log_departure('a' .. gone) end
  if not passthrough then tokens = tokens - n * 1000 end
  admitted_total = admitted_total + n
end
if rnd then redis.call('HSET', EV, 'rnd', rnd) end
local waiting = redis.call('ZCARD', Q)
-- The measured rate (milli-admissions per second) behind every ETA: admissions over a sliding
-- window of 30 s (the previous window weighted by how much of it is still inside the last 30 s),
-- counting only time with a backlog, so an empty queue does not read as a slow one.
local W = 30000
local rate_m = c.rate_m
if w_start == 0 then w_start, w_cur, w_prev = NOW, 0, -1 end
if waiting == 0 and n == 0 then
  w_start = w_start + dt
else
  w_cur = w_cur + n
end
local el = NOW - w_start
if el >= W then
  w_prev, w_cur, w_start, el = w_cur, 0, NOW, 0
end
if w_prev >= 0 then
  rate_m = math.floor((w_prev * (W - el) + w_cur * W) / 900)
elseif el >= 1000 then
  rate_m = math.floor(w_cur * 1000000 / el)
end
redis.call('HSET', EV, 'tokens', tokens, 'tb_ts', tb_ts, 'tick_ts', NOW, 'admitted', admitted_total,
  'w_start', w_start, 'w_cur', w_cur, 'w_prev', w_prev, 'rate_m', rate_m)
return {n, ready_expired, waiting, redis.call('ZCARD', R), redis.call('ZCARD', A)}

-- admit: one admission tick, run by every gateway replica (ARGV[3] unused).
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
local st = redis.call('HMGET', EV, 'tokens', 'tb_ts', 'admitted', 'w_start', 'w_cur', 'w_prev')
local tokens, tb_ts = tonumber(st[1]) or 0, tonumber(st[2]) or NOW
local admitted_total = tonumber(st[3]) or 0
local w_start, w_cur, w_prev = tonumber(st[4]) or 0, tonumber(st[5]) or 0, tonumber(st[6]) or -1
local dt = math.max(0, NOW - tb_ts)
local cap = c.aps * 1000
if NOW > tb_ts then
  tokens = math.min(cap, tokens + (NOW - tb_ts) * c.aps)
  tb_ts = NOW
end
if tokens > cap then tokens = cap end
local n = 0
local paused = c.stopped or c.sold or c.aps == 0 or pre_queue(c)
if not paused then
  local room = c.max - redis.call('ZCARD', R) - redis.call('ZCARD', A)
  local want = math.min(math.floor(tokens / 1000), room)
  local deadline = NOW + c.rto * 1000
  -- Idle users not yet swept are skipped, not admitted: they would only hold a slot until the
  -- ready timeout.
  local gone = 0
  while want > n do
    local popped = redis.call('ZPOPMIN', Q, want - n)
    if #popped == 0 then break end
    gone = gone + #popped / 2
    for i = 1, #popped, 2 do
      local d, t = popped[i], tonumber(popped[i + 1]) % TBITS
      local hk, hf = hb_key(t), t % BUCKET
      local last = tonumber(redis.call('HGET', hk, hf))
      redis.call('HDEL', hk, hf)
      if last and NOW_S - beat(c, last) < c.idle then
        redis.call('ZADD', R, deadline, d)
        redis.call('HSET', TK, d, t)
        n = n + 1
      end
    end
  end
  if gone > 0 then log_departure('a' .. gone) end
  tokens = tokens - n * 1000
  admitted_total = admitted_total + n
end
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
redis.call('HSET', EV, 'tokens', tokens, 'tb_ts', tb_ts, 'admitted', admitted_total,
  'w_start', w_start, 'w_cur', w_cur, 'w_prev', w_prev, 'rate_m', rate_m)
return {n, ready_expired, waiting, redis.call('ZCARD', R), redis.call('ZCARD', A)}

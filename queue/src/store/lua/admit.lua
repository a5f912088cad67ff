-- admit: one admission tick, run by every gateway replica (ARGV[3] unused).
-- Reply: {admitted, ready_expired, waiting, ready, active} or {-1} for an unknown event.
--
-- The token bucket lives in the event hash, in milli-tokens so that Lua and Rust agree exactly:
-- all replicas draw from one bucket, so N replicas never admit N times the rate. Its capacity is
-- one second of admissions (the largest burst allowed). A replica whose clock runs behind cannot
-- refill twice: time only moves the bucket forward (tb_ts = max(tb_ts, NOW)).
local c = load_cfg()
if not c then return {-1} end
local ready_expired = redis.call('ZREMRANGEBYSCORE', R, '-inf', NOW)
redis.call('ZREMRANGEBYSCORE', A, '-inf', NOW)
local st = redis.call('HMGET', EV, 'tokens', 'tb_ts', 'admitted', 'm_ts', 'm_total')
local tokens, tb_ts = tonumber(st[1]) or 0, tonumber(st[2]) or NOW
local admitted_total, m_ts, m_total = tonumber(st[3]) or 0, tonumber(st[4]) or 0, tonumber(st[5]) or 0
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
  while want > n do
    local popped = redis.call('ZPOPMIN', Q, want - n)
    if #popped == 0 then break end
    for i = 1, #popped, 2 do
      local t = tonumber(popped[i])
      local hk, hf = hb_key(t), t % BUCKET
      local last = tonumber(redis.call('HGET', hk, hf))
      redis.call('HDEL', hk, hf)
      if last and NOW_S - last < c.idle then
        redis.call('ZADD', R, deadline, t)
        n = n + 1
      end
    end
  end
  tokens = tokens - n * 1000
  admitted_total = admitted_total + n
end
local waiting = redis.call('ZCARD', Q)
-- The measured rate (milli-admissions per second) behind every ETA: an EWMA over windows of at
-- least one second, sampled only while a backlog remained, so an empty queue does not read as
-- a slow one.
local rate_m = c.rate_m
if m_ts == 0 or waiting == 0 then
  m_ts, m_total = NOW, admitted_total
elseif NOW - m_ts >= 1000 then
  local sample = math.floor((admitted_total - m_total) * 1000000 / (NOW - m_ts))
  if rate_m < 0 then rate_m = sample else rate_m = math.floor((3 * rate_m + sample) / 4) end
  m_ts, m_total = NOW, admitted_total
end
redis.call('HSET', EV, 'tokens', tokens, 'tb_ts', tb_ts, 'admitted', admitted_total,
  'm_ts', m_ts, 'm_total', m_total, 'rate_m', rate_m)
return {n, ready_expired, waiting, redis.call('ZCARD', R), redis.call('ZCARD', A)}

-- sweep: ARGV[3] = budget: at most budget * 64 waiting places are read per call. Removes
-- waiting users idle for idle_timeout_seconds. Reply: {expired, 1 when the pass reached the end
-- of the queue | 0} or {-1}.
--
-- A pass walks the queue in its order, a slice per call, and successive calls walk the whole
-- queue in bounded steps; 'sweep_pos' is where the last call stopped. Idle places are removed in
-- queue order, so the departure log reads the same as the in-memory store's.
--
-- Hash buckets (events created before string buckets, lib.lua): the queue is read by score
-- (ZRANGEBYSCORE, 'sweep_pos' the last score read, kept as Redis's own string of it so it is
-- exact), each bucket once for the consecutive places that share it.
--
-- String buckets: the places scored below 0 (the priority lane and pre-queue draws, in no
-- ticket order) are read the same way, one heartbeat each; then the places scored by their
-- ticket are read by bucket ('sweep_pos' = 'b' .. the next bucket): one GET and one unpack for
-- 63 heartbeats, and a queue lookup only for an idle one. Reading every place's score off the
-- queue cost ~11,500 redis-server instructions a place, mostly turning scores into strings and
-- back; by bucket it is ~1,000 a place (docs/benchmarks.md).
local c = load_cfg()
if not c then return {-1} end
local budget = tonumber(ARGV[3])
local pos = redis.call('HGET', EV, 'sweep_pos')
local by_bucket = HB_STR and pos and string.sub(pos, 1, 1) == 'b'
local stale = {}
local done, next_pos = 0, nil

if not by_bucket then
  local want = budget * 64
  local lo, hi = '-inf', '+inf'
  if pos then lo = '(' .. pos end
  if HB_STR then hi = '(0' end
  local slice = redis.call('ZRANGEBYSCORE', Q, lo, hi, 'WITHSCORES', 'LIMIT', 0, want)
  local bucket_key, beats = nil, nil
  for i = 1, #slice, 2 do
    local score = tonumber(slice[i + 1])
    local t = score % TBITS
    local last = nil
    if score < 0 then
      -- The pre-queue is in draw order, where neighbours rarely share a bucket.
      last = hb_get(t)
    else
      local hk = hb_key(t)
      if hk ~= bucket_key then
        bucket_key, beats = hk, {}
        local h = redis.call('HGETALL', hk)
        for j = 1, #h, 2 do beats[tonumber(h[j])] = tonumber(h[j + 1]) end
      end
      last = beats[t % BUCKET]
    end
    if idle(c, last) then
      stale[#stale + 1] = {slice[i], t}
    end
  end
  if #slice == 2 * want then
    next_pos = slice[#slice]
  elseif HB_STR then
    -- On to the places scored by their ticket, from the lowest one's bucket, with what is left
    -- of the budget.
    local head = redis.call('ZRANGEBYSCORE', Q, '(0', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if head[2] then
      by_bucket, pos = true, 'b' .. int(math.floor(tonumber(head[2]) / BUCKET))
      budget = budget - math.floor(#slice / 128)
    else
      done = 1
    end
  else
    done = 1
  end
end

if by_bucket then
  local b = tonumber(string.sub(pos, 2))
  local last_b = math.floor((tonumber(redis.call('GET', SEQ)) or 0) / BUCKET)
  -- '>I4' 63 times: a bucket's heartbeats in one call (struct is Redis's own Lua library).
  local fmt = '>' .. string.rep('I4', HB_SLOTS)
  -- A heartbeat after `cut` is not idle whatever a pause credits it (beat() only adds), so most
  -- slots cost one comparison.
  local cut = NOW_S - c.idle
  local n = 0
  while b <= last_b and n < budget do
    local s = redis.call('GET', hb_key(b * BUCKET))
    if s and #s == HB_LEN then
      local beats = {struct.unpack(fmt, s)}
      for i = 1, HB_SLOTS do
        local last = beats[i]
        -- A zero slot is no place (admitted, left, or not a waiting ticket).
        if last <= cut and last ~= 0 and idle(c, last) then
          local t = b * BUCKET + i - 1
          -- Found only while scored by its ticket: a place scored below 0 was read above.
          local m = redis.call('ZRANGEBYSCORE', Q, t, t)
          if m[1] then stale[#stale + 1] = {m[1], t} end
        end
      end
    end
    b, n = b + 1, n + 1
  end
  if b > last_b then done = 1 else next_pos = 'b' .. b end
end

for _, s in ipairs(stale) do
  drop_waiting(s[1], s[2], redis.call('ZRANK', Q, s[1]))
end
if done == 1 then
  redis.call('HDEL', EV, 'sweep_pos')
else
  redis.call('HSET', EV, 'sweep_pos', next_pos)
end
return {#stale, done}

-- sweep: ARGV[3] = budget: at most budget * 64 waiting places are read per call. Removes
-- waiting users idle for idle_timeout_seconds. Reply: {expired, 1 when the pass reached the end
-- of the queue | 0} or {-1}.
--
-- A pass walks the queue in its order, a slice per call; 'sweep_pos' is the score where the
-- last call stopped (kept as Redis's own string of it, so it is exact), and successive calls
-- walk the whole queue in bounded steps. Consecutive places mostly share a heartbeat bucket,
-- so each bucket is read once per slice.
local c = load_cfg()
if not c then return {-1} end
local pos = redis.call('HGET', EV, 'sweep_pos')
local lo = '-inf'
if pos then lo = '(' .. pos end
-- A budget unit is 64 places, about one heartbeat bucket.
local want = tonumber(ARGV[3]) * 64
local slice = redis.call('ZRANGEBYSCORE', Q, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, want)
local stale = {}
local bucket_key, beats = nil, nil
for i = 1, #slice, 2 do
  local score = tonumber(slice[i + 1])
  local t = score % TBITS
  local hk = hb_key(t)
  local last = nil
  if score < 0 then
    -- The pre-queue is in draw order, where neighbours rarely share a bucket.
    last = hb_get(t)
  else
    if hk ~= bucket_key then
      bucket_key = hk
      if HB_STR then
        beats = redis.call('GET', hk)
      else
        beats = {}
        local h = redis.call('HGETALL', hk)
        for j = 1, #h, 2 do beats[tonumber(h[j])] = tonumber(h[j + 1]) end
      end
    end
    if HB_STR then last = hb_at(beats, hb_off(t)) else last = beats[t % BUCKET] end
  end
  if (not last) or NOW_S - beat(c, last) >= c.idle then
    stale[#stale + 1] = {slice[i], t}
  end
end
-- In queue order, so the departure log reads the same as the in-memory store's.
for _, s in ipairs(stale) do
  drop_waiting(s[1], s[2], redis.call('ZRANK', Q, s[1]))
end
local done = 0
if #slice < 2 * want then
  done = 1
  redis.call('HDEL', EV, 'sweep_pos')
else
  redis.call('HSET', EV, 'sweep_pos', slice[#slice])
end
return {#stale, done}

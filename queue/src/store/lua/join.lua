-- join: a batch of N >= 1 joins of one event, applied in order exactly as N calls would be.
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2] = the session digest of join i, its pre-queue draw, and the
-- SHA-256 of its access code ('' for none) (i = 1..N).
-- Reply: {-1} unknown event | {-2} closed or out of tickets | {-3} the queueing method is
-- `reject` | {-4} an access code is unknown or spent by another session | {rate_m, aps, flags,
-- opens, epoch, then per join: code (1 new, 0 existing), ticket, status, position, expires_at,
-- log seq (the departure log's sequence the position is exact at)}.
-- A batch is one script call, so the whole group costs one round trip and one WAIT (the group
-- commit of joins); a session whose ticket still stands gets it back (a refresh never takes a
-- second place), also when it appears twice in one batch; one whose ticket is gone joins again
-- at the back.
local c = load_cfg()
if not c then return {-1} end
if c.sold then return {-2} end
-- `reject` takes no joins at all, refreshes included, so that a batch is refused whole; those
-- holding a place keep it and read it with their waiting token (status, WebSocket).
if c.qm == REJECT then return {-3} end
local n = (#ARGV - 2) / 3
-- Checked once for the batch, so that a batch is refused whole rather than half applied. The
-- counter is read once and written once (below): tickets of the batch are handed out here.
local seq0 = tonumber(redis.call('GET', SEQ)) or 0
if seq0 + n >= TBITS then return {-2} end
local seq = seq0
-- Access codes: codes hash field = SHA-256 of the code, value '1' while unspent, else the digest
-- of the session that spent it. Checked before anything is written, for the same reason; a
-- code that one join of the batch spends is spent for the later ones.
local CODES = P .. 'codes'
local owner_of = {}
for i = 1, n do
  local h = ARGV[2 + 3 * i]
  if h ~= '' then
    local d = ARGV[3 * i]
    local owner = owner_of[h] or redis.call('HGET', CODES, h)
    if (not owner) or (owner ~= '1' and owner ~= d) then return {-4} end
    owner_of[h] = d
  end
end
local pre = pre_queue(c)
local out = {c.rate_m, c.aps, flags(c), c.opens or -1, c.epoch}
local expires = (NOW_S + c.idle) * 1000
local qlen = nil
local wrote = false

-- New places are written together: one ZADD for the batch and one write a heartbeat bucket, at
-- the end or before anything reads the queue or a heartbeat again (a refresh, a repeated
-- session, the queue's length, a priority arrival), so every read sees what the joins before it
-- would have left, one by one. In a script a redis.call costs more than the entry it writes.
-- A string bucket's new slots are one run of bytes from the first: the tickets between are this
-- batch's too, admitted at once, so their slots hold zero and are written as zero.
local new_q, new_n = {}, 0
local new_beats, beat_keys = {}, {}
local function write_new()
  if new_n > 0 then
    redis.call('ZADD', Q, unpack(new_q, 1, new_n))
    new_n = 0
  end
  if #beat_keys > 0 then
    for _, k in ipairs(beat_keys) do
      local b = new_beats[k]
      if HB_STR then
        hb_write(k, hb_off(b.first), table.concat(b))
      else
        redis.call('HSET', k, unpack(b))
      end
    end
    new_beats, beat_keys = {}, {}
  end
end
local function add_new(score, d, t)
  new_q[new_n + 1], new_q[new_n + 2] = score, d
  new_n = new_n + 2
  local k = hb_key(t)
  local b = new_beats[k]
  if not b then
    b = {first = t, last = t - 1}
    new_beats[k] = b
    beat_keys[#beat_keys + 1] = k
  end
  if HB_STR then
    for _ = b.last + 1, t - 1 do b[#b + 1] = ZERO4 end
    b[#b + 1], b.last = NOW_B, t
  else
    b[#b + 1], b[#b + 2] = hb_field(t), NOW_S_ARG
  end
end

-- Admission at once, in this script so it is atomic with the join: when the queue is open and
-- admitting, nobody waits ahead of the newcomer (nobody at all, or for a priority place nobody
-- in the priority lane, which is admitted first whatever the method), a slot is free and the
-- token bucket has a token (`passthrough` needs none: it admits as fast as capacity allows).
-- So nobody is passed, and the rate holds whether admission comes from here or from the tick.
-- Returns the READY deadline, or nil.
-- Who waits ahead is asked before what is held: under load the queue is not empty, and its
-- length is already known, so a join then costs no capacity count (two ZCOUNTs).
local function at_once(d, t, prio)
  if pre or c.stopped then return nil end
  local ahead
  if prio then
    write_new()
    ahead = redis.call('ZCOUNT', Q, '-inf', '(' .. string.format('%.0f', PRIO_END))
  elseif qlen then
    ahead = qlen
  else
    write_new()
    ahead = redis.call('ZCARD', Q)
  end
  if ahead > 0 then return nil end
  if held() >= c.max then return nil end
  if c.qm ~= PASSTHROUGH then
    local tokens, tb_ts = bucket(c)
    if tokens < 1000 then return nil end
    redis.call('HSET', EV, 'tokens', tokens - 1000, 'tb_ts', tb_ts)
  end
  local deadline = NOW + c.rto * 1000
  redis.call('ZADD', R, deadline, d)
  redis.call('HSET', TK, d, t)
  redis.call('HINCRBY', EV, 'admitted', 1)
  return deadline
end

-- Every session's queue score and READY/ADMITTED ticket are read once for the batch (ZMSCORE,
-- HMGET) rather than by one ZSCORE and one HGET per join: in a script a redis.call costs more
-- than the lookup it asks for. What the batch itself changes of either is kept in in_q and
-- in_tk (false: gone), so a session met twice in one batch reads what its first join left.
local sessions = {}
for i = 1, n do sessions[i] = ARGV[3 * i] end
local scores = redis.call('ZMSCORE', Q, unpack(sessions))
local slots = redis.call('HMGET', TK, unpack(sessions))
local in_q, in_tk = {}, {}
local function now_or_then(now, then_, d, i)
  local v = now[d]
  if v == nil then v = then_[i] end
  return v or nil
end

for i = 1, n do
  local d = sessions[i]
  local s = now_or_then(in_q, scores, d, i)
  local old = nil
  if s then old = tonumber(s) % TBITS else old = tonumber(now_or_then(in_tk, slots, d, i)) end
  local p = nil
  if old then
    write_new()
    p = place(c, old, d, true, s)
    if p[1] == EXPIRED then
      -- A lapsed READY slot or admission ends here, so the session is in one set at a time.
      -- (A waiting place that expired was taken out of the queue by place().)
      if s then in_q[d] = false else drop_slot(d); in_tk[d] = false end
      p = nil
      qlen = nil
      wrote = true
    else
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 0, old, p[1], p[2], p[3]
      out[k + 6] = log_seq(c)
    end
  end
  if not p then
    seq = seq + 1
    local t = seq
    wrote = true
    -- A new place with a code takes the priority lane and spends the code; the session that
    -- spent it, back after its place ended, joins the general queue (one priority place a code).
    local prio = false
    local h = ARGV[2 + 3 * i]
    if h ~= '' and redis.call('HGET', CODES, h) == '1' then
      redis.call('HSET', CODES, h, d)
      prio = true
    end
    local k = #out
    local ready_until = at_once(d, t, prio)
    if ready_until then
      in_tk[d] = t
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, READY, 0, ready_until
    elseif prio then
      write_new()
      redis.call('ZADD', Q, PRIO_SCORE + t, d)
      hb_put(t)
      in_q[d] = PRIO_SCORE + t
      if qlen then qlen = qlen + 1 end
      local st, pos = WAITING, redis.call('ZRANK', Q, d) + 1
      -- Everyone from that rank on moved back one: logged, unlike a join at the back.
      log_departure('p' .. pos)
      if pre then st, pos = PRE_QUEUE, 0 end
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, st, pos, expires
    elseif pre then
      -- Arrival order is the ticket. In the pre-queue the score is a secret uniform draw below
      -- every ticket, so at opening the pre-queue is a uniform shuffle placed ahead of later
      -- arrivals (equal draws keep arrival order).
      local score = tonumber(ARGV[1 + 3 * i]) * TBITS + t
      add_new(score, d, t)
      in_q[d] = score
      if qlen then qlen = qlen + 1 end
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, PRE_QUEUE, 0, expires
    else
      -- The newest ticket is last in the queue (pre-queue draws all sort below it): its place
      -- is the queue's length with it, counted once per batch and then by the joins it added.
      if qlen then
        qlen = qlen + 1
      else
        write_new()
        qlen = redis.call('ZCARD', Q) + 1
      end
      add_new(t, d, t)
      in_q[d] = t
      out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = 1, t, WAITING, qlen, expires
    end
    out[k + 6] = log_seq(c)
  end
end
write_new()
if seq > seq0 then redis.call('SET', SEQ, seq) end
-- A batch of refreshes only may have written nothing; one write that changes nothing makes
-- the WAIT after this call also cover the writes it answers about, which may not have reached a
-- replica yet (Redis waits for the offset of this connection's last write).
if not wrote then redis.call('HINCRBY', EV, 'joins', 0) end
return out

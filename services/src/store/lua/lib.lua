-- Shared by every script (prepended). ARGV[1] is the event's key prefix `bk:{event}:`, ARGV[2]
-- the caller's clock in Unix ms. Every key derives from the prefix, so all are in one slot.
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local K_EV, K_FREE, K_SEAT, K_POS, K_HOLDS = P .. 'ev', P .. 'free', P .. 'seat', P .. 'pos', P .. 'holds'

local function rkey(id) return P .. 'r:' .. id end
local function ikey(id) return P .. 'pi:' .. id end

local function split(s)
  local t = {}
  if not s or s == '' then return t end
  for x in string.gmatch(s, '[^,]+') do t[#t + 1] = x end
  return t
end

-- {code, changed, field, value, ...} of a hash.
local function reply(code, changed, key)
  local r = {code, changed}
  local h = redis.call('HGETALL', key)
  for i = 1, #h do r[#r + 1] = h[i] end
  return r
end

-- Frees the seats this reservation still holds and sets its status (3 cancelled, 4 expired).
local function release(id, status)
  local k = rkey(id)
  for _, s in ipairs(split(redis.call('HGET', k, 'seats'))) do
    if redis.call('HGET', K_SEAT, s) == 'H:' .. id then
      redis.call('HSET', K_SEAT, s, 'F')
      redis.call('ZADD', K_FREE, redis.call('HGET', K_POS, s), s)
    end
  end
  redis.call('HSET', k, 'st', status)
  redis.call('ZREM', K_HOLDS, id)
end

-- An idempotency slot holds `id|forget_at_ms`: the window follows the caller's clock; the key's
-- own TTL only collects garbage. The record (`key_of(id)`) the slot `idem` names while the
-- window is open and the record exists, or nil; and whether its fingerprint differs from `fp`
-- (the key reused with other parameters).
local function replayed(idem, key_of, fp)
  local prev = redis.call('GET', idem)
  if not prev then return nil, false end
  local id, till = string.match(prev, '^(.*)|(%d+)$')
  if id and tonumber(till) > NOW and redis.call('EXISTS', key_of(id)) == 1 then
    return key_of(id), redis.call('HGET', key_of(id), 'fp') ~= fp
  end
  return nil, false
end

-- Points the slot `idem` at `id` for `ms` milliseconds.
local function remember(idem, id, ms)
  redis.call('SET', idem, id .. '|' .. (NOW + ms), 'PX', ms)
end

-- Dedup and append in one atomic step, for a batch of N >= 1 webhooks (the group commit of
-- appends: one round trip and one WAIT for the whole batch).
-- KEYS[2i-1] the dedup key of webhook i's id, KEYS[2i] the stream to append it to (the inbox,
-- or the dead-letter stream for a well-signed but malformed payload).
-- ARGV[1] dedup TTL in seconds; then per webhook: the number k of its field/value strings,
-- followed by those k strings.
-- Returns per webhook {'new', entry id} or {'duplicate', entry id of the first delivery},
-- flattened, in order: exactly what N single calls would answer (a repeat of an id within the
-- batch is a duplicate of the first).
--
-- Why one script: the "seen" mark and the entry must exist together. Marking first and
-- appending in a second call could lose the webhook if the gateway died in between (the
-- provider's retry would then be answered "duplicate"); appending first could store it twice
-- under concurrent deliveries. Redis runs a script alone, so of any number of concurrent
-- deliveries of one id, across any number of gateways, exactly one appends.
local out = {}
local at = 2
for i = 1, #KEYS / 2 do
  local seen, stream = KEYS[2 * i - 1], KEYS[2 * i]
  local k = tonumber(ARGV[at])
  local first = redis.call('GET', seen)
  if first then
    -- Rewrite the mark as it is (same value, same TTL) so that this call always replicates
    -- something: a WAIT after it then also covers the first delivery, whose own WAIT may have
    -- failed (Redis waits for the offset of this connection's last write only).
    redis.call('SET', seen, first, 'KEEPTTL')
    out[#out + 1] = 'duplicate'
    out[#out + 1] = first
  else
    local fields = {}
    for j = at + 1, at + k do
      fields[#fields + 1] = ARGV[j]
    end
    local id = redis.call('XADD', stream, '*', unpack(fields))
    -- The mark holds the entry id so that a duplicate can name what it duplicates; it expires
    -- after the TTL (providers retry for hours to a few days, so 7 days by default).
    redis.call('SET', seen, id, 'EX', ARGV[1])
    out[#out + 1] = 'new'
    out[#out + 1] = id
  end
  at = at + k + 1
end
return out

-- Dedup and append in one atomic step.
-- KEYS[1] the dedup key of this webhook id, KEYS[2] the stream to append to (the inbox, or
-- the dead-letter stream for a well-signed but malformed payload).
-- ARGV[1] dedup TTL in seconds, ARGV[2..] the envelope's field/value pairs.
-- Returns {'new', entry id} or {'duplicate', entry id of the first delivery}.
--
-- Why one script: the "seen" mark and the entry must exist together. Marking first and
-- appending in a second call could lose the webhook if the gateway died in between (the
-- provider's retry would then be answered "duplicate"); appending first could store it twice
-- under concurrent deliveries. Redis runs a script alone, so of any number of concurrent
-- deliveries of one id, across any number of gateways, exactly one appends.
local first = redis.call('GET', KEYS[1])
if first then
  -- Rewrite the mark as it is (same value, same TTL) so that this call always replicates
  -- something: a WAIT after it then also covers the first delivery, whose own WAIT may have
  -- failed (Redis waits for the offset of this connection's last write only).
  redis.call('SET', KEYS[1], first, 'KEEPTTL')
  return {'duplicate', first}
end
local fields = {}
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
-- The mark holds the entry id so that a duplicate can name what it duplicates; it expires
-- after the TTL (providers retry for hours to a few days, so 7 days by default).
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return {'new', id}

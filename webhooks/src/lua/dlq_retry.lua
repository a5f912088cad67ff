-- Re-enqueues a dead letter into the inbox, once.
-- KEYS[1] dead-letter stream, KEYS[2] state hash, KEYS[3] inbox stream.
-- ARGV[1] dead-letter id, ARGV[2] now as RFC 3339.
-- Returns {'retried', inbox entry id}, {'already', inbox entry id}, {'resolved'} or {'missing'}.
--
-- Idempotent: the state records the re-enqueued entry, so a second call (an operator's double
-- click, a retried admin request) answers the first one's entry instead of enqueueing again.
local id = ARGV[1]
local raw = redis.call('HGET', KEYS[2], id)
local st = {}
if raw then st = cjson.decode(raw) end
if st.retry_stream_id then return {'already', st.retry_stream_id} end
if st.resolved_at then return {'resolved'} end
local e = redis.call('XRANGE', KEYS[1], id, id)
if #e == 0 then return {'missing'} end
-- The envelope only: the dead letter's own bookkeeping does not travel back.
local meta = {attempts = true, last_error = true, failed_at = true, stream_id = true, retry_of = true}
local copy = fields_without(e[1][2], meta)
copy[#copy + 1] = 'retry_of'
copy[#copy + 1] = id
local sid = redis.call('XADD', KEYS[3], '*', unpack(copy))
st.retry_stream_id = sid
st.retried_at = ARGV[2]
redis.call('HSET', KEYS[2], id, cjson.encode(st))
return {'retried', sid}

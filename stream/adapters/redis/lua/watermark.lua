-- Advance a raw partition's event-time watermark (never backwards) and note when it last had events.
-- KEYS[1] the partition's watermark hash: ts = highest event ts ingested, at = wall clock (ms) of its latest batch
-- ARGV[1] highest event ts of the batch   ARGV[2] wall clock (ms)   ARGV[3] TTL (ms)
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'ts') or '0') then
  redis.call('HSET', KEYS[1], 'ts', ARGV[1])
end
redis.call('HSET', KEYS[1], 'at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

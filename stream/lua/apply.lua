-- Atomically store one person's new state, if nobody wrote it since it was loaded.
-- KEYS[1] journey, KEYS[2] fence, KEYS[3] outbox, KEYS[4..] conversion snapshots
-- ARGV[1] expected fence version     ARGV[2] journey bytes        ARGV[3] journey/fence TTL (ms)
-- ARGV[4] recent event ids (json)    ARGV[5] outbox ('' = none)   ARGV[6] outbox TTL (ms)
-- ARGV[7] conversion TTL (ms)        ARGV[8] n = number of topic:partition offsets
-- ARGV[9 .. 8+2n] tp, offset pairs   ARGV[9+2n ..] one value per conversion key
-- Returns 1 when written, 0 when refused (stale version: reload and recompute).
local version = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return 0
end
local ttl = ARGV[3]
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
local n = tonumber(ARGV[8])
local fields = {'v', version + 1, 'ids', ARGV[4]}
for i = 0, n - 1 do
  fields[#fields + 1] = ARGV[9 + 2 * i]
  fields[#fields + 1] = ARGV[10 + 2 * i]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIRE', KEYS[2], ttl)
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
end
local first_value = 9 + 2 * n
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], ARGV[first_value + i - 4], 'PX', ARGV[7])
end
return 1

-- Atomically store one person's new state, if nobody wrote it since it was loaded.
-- KEYS[1] journey, KEYS[2] fence, KEYS[3] outbox (hash: offset -> outputs), KEYS[4..] conversions
-- ARGV[1] expected fence version     ARGV[2] journey bytes        ARGV[3] journey/fence TTL (ms)
-- ARGV[4] recent event ids (json)    ARGV[5] outbox entries kept  ARGV[6] outbox TTL (ms)
-- ARGV[7] conversion TTL (ms)        ARGV[8] n = number of topic:partition offsets
-- ARGV[9 .. 8+2n] tp, offset pairs   then one value per conversion key (#KEYS - 3 of them)
-- then offset, outputs pairs for the outbox (added to it: earlier entries stay, for replays
-- of batches whose outputs were never produced; the oldest beyond ARGV[5] are dropped).
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
local first_value = 9 + 2 * n
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], ARGV[first_value + i - 4], 'PX', ARGV[7])
end
local first_out = first_value + #KEYS - 3
if first_out <= #ARGV then
  redis.call('HSET', KEYS[3], unpack(ARGV, first_out, #ARGV))
  local kept = tonumber(ARGV[5])
  local offsets = redis.call('HKEYS', KEYS[3])
  if #offsets > kept then
    table.sort(offsets, function(a, b) return tonumber(a) < tonumber(b) end)
    redis.call('HDEL', KEYS[3], unpack(offsets, 1, #offsets - kept))
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 1

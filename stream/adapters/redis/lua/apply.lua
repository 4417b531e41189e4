-- Atomically store one person's new state, if nobody wrote it since it was loaded.
-- KEYS[1] state (string: 12-digit write version, then the encoded journey and fence)
-- KEYS[2] outbox (hash: position `topic:partition@offset` -> outputs), KEYS[3..] conversions
-- ARGV[1] expected version           ARGV[2] new state value (stamped with version + 1)
-- ARGV[3] state TTL (ms)             ARGV[4] outbox entries kept   ARGV[5] outbox TTL (ms)
-- ARGV[6] conversion TTL (ms)        then one value per conversion key (#KEYS - 2 of them)
-- then position, outputs pairs for the outbox (added to it: earlier entries stay, for replays
-- of batches whose outputs were never produced; the oldest beyond ARGV[4] are dropped).
-- Returns 1 when written, 0 when refused (stale version: reload and recompute).
local stored = redis.call('GETRANGE', KEYS[1], 0, 11)
local version = 0
if stored ~= '' then
  version = tonumber(stored)
end
if version ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[6 + i - 2], 'PX', ARGV[6])
end
local first_out = 7 + #KEYS - 2
if first_out <= #ARGV then
  redis.call('HSET', KEYS[2], unpack(ARGV, first_out, #ARGV))
  local kept = tonumber(ARGV[4])
  local positions = redis.call('HKEYS', KEYS[2])
  if #positions > kept then
    local function offset(position) return tonumber(string.match(position, '(%d+)$')) end
    table.sort(positions, function(a, b) return offset(a) < offset(b) end)
    redis.call('HDEL', KEYS[2], unpack(positions, 1, #positions - kept))
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1

-- Add path-count increments of one partition exactly once (fenced by offset).
-- KEYS[1] path counts hash   KEYS[2] the partition's path fence (last applied offset)
-- ARGV[1] highest offset of this batch on the partition   ARGV[2] max distinct paths
-- ARGV[3] TTL (ms)
-- ARGV[4..] groups of 5 in offset order: offset, path, conversions, value_micros, nulls
-- Hash fields: c|<path>, v|<path>, n|<path> (integers) and '#' = distinct paths. Once '#' reaches
-- the cap, a new path is counted under '(other)'.
local fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
local cap = tonumber(ARGV[2])
for i = 4, #ARGV, 5 do
  if tonumber(ARGV[i]) > fence then
    local path = ARGV[i + 1]
    if redis.call('HEXISTS', KEYS[1], 'n|' .. path) == 0 then
      if tonumber(redis.call('HGET', KEYS[1], '#') or '0') >= cap then
        path = '(other)'
      end
      if redis.call('HSETNX', KEYS[1], 'n|' .. path, 0) == 1 then
        redis.call('HINCRBY', KEYS[1], '#', 1)
      end
    end
    redis.call('HINCRBY', KEYS[1], 'c|' .. path, ARGV[i + 2])
    redis.call('HINCRBY', KEYS[1], 'v|' .. path, ARGV[i + 3])
    redis.call('HINCRBY', KEYS[1], 'n|' .. path, ARGV[i + 4])
  end
end
if tonumber(ARGV[1]) > fence then
  redis.call('SET', KEYS[2], ARGV[1])
end
for k = 1, 2 do
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return 1

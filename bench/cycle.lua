-- bench/cycle.lua: a wrk script that sends GET requests for the paths listed in a file, one a line,
-- in turn, so that no server can answer the whole run from one cached result.
--   wrk -t2 -c16 -d10s -s bench/cycle.lua http://HOST:PORT -- PATHS_FILE
-- Each wrk thread walks the same list from its own starting point.

local paths = {}
local i = 0
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
end

function init(args)
    for line in io.lines(args[1]) do
        if line ~= "" then
            paths[#paths + 1] = line
        end
    end
    if #paths == 0 then
        error("no paths in " .. tostring(args[1]))
    end
    -- Different starting points for the threads (a prime stride, whatever their number).
    i = (((thread_number or 1) - 1) * 4999) % #paths
end

function request()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end

math.randomseed(7)
request = function() return wrk.format("GET", "/home?id=" .. math.random(1, 999999)) end

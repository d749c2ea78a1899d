module crew/bench/peers/go-echo

go 1.19

# metrics rules: see the metrics issue

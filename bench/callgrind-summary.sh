# Sourced by bench/callgrind-request.sh and bench/callgrind-tls-request.sh: one round's figure
# from a callgrind dump, and on the last round the functions that cost most per request.
# callgrind_summary DUMP REQUESTS ROUND LAST_ROUND TOP
callgrind_summary() {
  local dump=$1 n=$2 round=$3 last=$4 top=$5 ir
  ir=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
  echo "round $round: $n requests, $ir instructions, $((ir / n)) per request"
  if [ "$round" = "$last" ] && [ "$top" -gt 0 ]; then
    callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null \
      | awk -v n="$n" -v top="$top" '/^ *[0-9,]+ +\( *[0-9.]+%\) +[^ ]/ && !/PROGRAM TOTALS/ {
          c = $1; gsub(",", "", c); sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, ""); sub(/ \[.*/, "")
          if ($0 ~ /clone|start_thread|LoopThread|WorkerC5start|libc_start|below main|:main$/) next
          if (shown++ < top) printf "%8.1f  %s\n", c / n, substr($0, 1, 150) }'
  fi
}

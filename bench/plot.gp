# SPDX-License-Identifier: MIT
# plot.gp - two panels from bench/load-sweep.sh: achieved qps and p99 latency
# against offered load.  Called by load-sweep.sh as
#   gnuplot -e "dat='sweep.dat'; out='x.png'; systems='dotproxyd dnsdist unbound'; xmax=80000; subtitle='...'" plot.gp
# dat: one block per system (gnuplot index), in the order of `systems`; columns
# x (offered qps; the unlimited run sits at xmax), label, qps achieved, p99 ms.

if (!exists("subtitle")) subtitle = ""
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200,520 font "sans,10" noenhanced
} else {
    set terminal png size 1200,520 noenhanced
}
set output out

set multiplot layout 1,2 title "DNS over TLS forwarding under offered load (UDP in, DoT to a local upstream)\n".subtitle

set logscale x 2
set xrange [1500:xmax * 1.3]
set grid
set key top left
set pointsize 1.2
set xlabel "offered load (dnsperf -Q, qps; \"max\" = no limit)"
# the x tics are the offered loads themselves (xtic(2) below), "max" for the unlimited run
set xtics () nomirror

sysname(i) = word(systems, i)
# fixed colours per system, so that figures from different runs read alike
color_of(i) = sysname(i) eq "dotproxyd" ? "#c0392b" : sysname(i) eq "dotproxyd-w2" ? "#e67e22" : \
              sysname(i) eq "dnsdist" ? "#2471a3" : sysname(i) eq "unbound" ? "#229954" : "#7d3c98"

set title "queries answered per second"
set ylabel "qps achieved"
set logscale y 10
set yrange [1500:*]
set ytics ("2k" 2000, "5k" 5000, "10k" 10000, "20k" 20000, "50k" 50000, "100k" 100000, "200k" 200000)
plot for [i=1:words(systems)] dat index (i - 1) using 1:3:xtic(2) with linespoints lc rgb color_of(i) pt 7 lw 2 title sysname(i), \
     (x <= xmax / 2 ? x : 1/0) with lines dt 2 lc "gray" title "offered"

set title "p99 latency (ms)"
set ylabel "p99 ms (log)"
set logscale y 10
set yrange [*:*]
set ytics auto
set key top left
plot for [i=1:words(systems)] dat index (i - 1) using 1:4:xtic(2) with linespoints lc rgb color_of(i) pt 7 lw 2 title sysname(i)

unset multiplot

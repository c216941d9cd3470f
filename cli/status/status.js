'use strict';
(function () {
  var prev = null;
  function text(id, v) { document.getElementById(id).textContent = v; }
  function total(c) { return c.queries_udp + c.queries_tcp + c.queries_api; }
  function getJSON(path) {
    return fetch(path, {cache: 'no-store'}).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function showStats(s) {
    var c = s.counters, now = Date.now(), q = total(c);
    if (prev !== null && now > prev.t && q >= prev.q)
      text('qps', ((q - prev.q) * 1000 / (now - prev.t)).toFixed(1));
    prev = {t: now, q: q};
    text('queries', String(q));
    text('answers', String(c.answers));
    var looked = c.cache_hits + c.cache_misses;
    text('hit-ratio', looked > 0 ? (100 * c.cache_hits / looked).toFixed(1) + ' %' : '\u2013');
    text('inflight', String(c.inflight));
    text('servfail', String(c.servfail));
    text('cache-entries', String(c.cache_entries));
    text('workers', String(s.workers));
  }
  function cell(tr, v, cls) {
    var td = document.createElement('td');
    td.textContent = v;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function showUpstreams(list) {
    var body = document.getElementById('upstreams');
    while (body.firstChild) body.removeChild(body.firstChild);
    list.forEach(function (u) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-upstream', u.upstream);
      cell(tr, u.upstream);
      cell(tr, (u.healthy ? 'up' : 'down') + ' (' + u.healthy_workers + '/' + u.workers + ')', u.healthy ? 'up' : 'down');
      cell(tr, u.srtt_seconds === null ? '\u2013' : (u.srtt_seconds * 1000).toFixed(2) + ' ms');
      cell(tr, String(u.connections));
      cell(tr, String(u.inflight));
      cell(tr, String(u.queries));
      cell(tr, String(u.answers));
      cell(tr, String(u.consecutive_failures));
      body.appendChild(tr);
    });
  }
  function showDynblocks(d) {
    var ev = [];
    Object.keys(d.events).forEach(function (k) { if (d.events[k] > 0) ev.push(k + ' ' + d.events[k]); });
    text('anomaly-events', ev.length ? ev.join(', ') : 'none');
    var body = document.getElementById('dynblocks');
    while (body.firstChild) body.removeChild(body.firstChild);
    d.blocks.forEach(function (b) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-dynblock', b.key);
      cell(tr, b.key);
      cell(tr, b.rule);
      cell(tr, b.action);
      cell(tr, b.reason);
      cell(tr, new Date(b.since * 1000).toLocaleTimeString());
      cell(tr, new Date(b.until * 1000).toLocaleTimeString());
      cell(tr, String(b.queries_blocked));
      body.appendChild(tr);
    });
  }
  function poll() {
    Promise.all([getJSON('/api/v1/stats'), getJSON('/api/v1/upstreams'),
                 getJSON('/api/v1/dynblocks')]).then(function (r) {
      showStats(r[0]);
      showUpstreams(r[1]);
      showDynblocks(r[2]);
      var st = document.getElementById('state');
      st.className = 'state';
      st.textContent = 'updated ' + new Date().toLocaleTimeString();
    }).catch(function (e) {
      var st = document.getElementById('state');
      st.className = 'state bad';
      st.textContent = 'cannot reach dotproxyd (' + e.message + ')';
    });
  }
  poll();
  setInterval(poll, 2000);
})();

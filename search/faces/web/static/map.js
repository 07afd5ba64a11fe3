// The map page: draws every paper as a point on a canvas, coloured by cluster (or section),
// with cluster labels; hover shows title and note, click opens the paper, the search box
// highlights the papers that answer a question. Plain JavaScript, no library, no network
// beyond this server (or none at all in the standalone file written by `papers map --html`).
"use strict";
var PapersMap = (function () {
  var data, opts, canvas, ctx, tip, highlighted = null, bySection = false, hover = -1;
  var W = 0, H = 0, PAD = 24, ratio = window.devicePixelRatio || 1, px, py;

  // Nine colours people tell apart (Okabe-Ito and Tableau's, no yellow on white) for the nine
  // largest groups; every other group is grey and known by its label. 27 hues blurred together.
  var PALETTE = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9",
                 "#8c564b", "#7f3c8d", "#3b7d23"], OTHER = "#a7b0b7", rankOf = {};

  function ranks() {  // group key -> its rank by size (0 = largest), for clusters and sections
    var counts = {}, key = bySection ? data.section : data.cluster;
    for (var i = 0; i < key.length; i++) counts[key[i]] = (counts[key[i]] || 0) + 1;
    var keys = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || a - b; });
    rankOf = {};
    keys.forEach(function (k, r) { rankOf[k] = r; });
  }

  function colour(i) {
    var r = rankOf[i];
    return r !== undefined && r < PALETTE.length ? PALETTE[r] : OTHER;
  }

  function layout() {
    var rect = canvas.parentElement.getBoundingClientRect();
    W = Math.max(320, rect.width); H = Math.max(320, Math.min(window.innerHeight - 140, W * 0.75));
    canvas.width = W * ratio; canvas.height = H * ratio;
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    var n = data.x.length; px = new Float32Array(n); py = new Float32Array(n);
    for (var i = 0; i < n; i++) {
      px[i] = PAD + (data.x[i] + 1) / 2 * (W - 2 * PAD);
      py[i] = PAD + (1 - (data.y[i] + 1) / 2) * (H - 2 * PAD);
    }
  }

  function toX(x) { return PAD + (x + 1) / 2 * (W - 2 * PAD); }
  function toY(y) { return PAD + (1 - (y + 1) / 2) * (H - 2 * PAD); }

  function draw() {
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    var n = data.x.length;
    var key = bySection ? data.section : data.cluster, r = n > 5000 ? 2 : 3.5;
    ranks();
    for (var i = 0; i < n; i++) {
      var on = !highlighted || highlighted.has(data.ids[i]);
      ctx.globalAlpha = on ? 0.85 : 0.12;
      ctx.fillStyle = colour(key[i]);
      ctx.beginPath(); ctx.arc(px[i], py[i], r, 0, 6.283); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (highlighted) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      for (var j = 0; j < n; j++) if (highlighted.has(data.ids[j])) {
        ctx.beginPath(); ctx.arc(px[j], py[j], r + 2.5, 0, 6.283); ctx.stroke();
      }
    }
    if (hover >= 0) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(px[hover], py[hover], r + 4, 0, 6.283); ctx.stroke();
    }
    if (!bySection) labels();
  }

  // Labels of the largest clusters first; one that would overlap a label already drawn is
  // moved just above or below it, else left out (the legend and hover still name it).
  function labels() {
    ctx.font = "600 13px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    var placed = [], order = data.clusters.slice().sort(function (a, b) { return b.size - a.size; });
    order.forEach(function (c) {
      var w = ctx.measureText(c.label).width + 6, h = 17, x0 = toX(c.x), y0 = toY(c.y);
      var x = Math.min(Math.max(x0, w / 2 + 2), W - w / 2 - 2);
      var spot = [y0, y0 - h, y0 + h, y0 - 2 * h, y0 + 2 * h].map(function (y) {
        return Math.min(Math.max(y, h / 2), H - h / 2);
      }).find(function (y) {
        return !placed.some(function (b) {
          return Math.abs(b[0] - x) < (b[2] + w) / 2 && Math.abs(b[1] - y) < h;
        });
      });
      if (spot === undefined) return;
      placed.push([x, spot, w]);
      ctx.lineWidth = 4; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.strokeText(c.label, x, spot);
      ctx.fillStyle = "#111"; ctx.fillText(c.label, x, spot);
    });
    // Where each label went (centre x, centre y, width; 17 px high), for tests and tools.
    canvas.setAttribute("data-labels", JSON.stringify(placed.map(function (b) {
      return [Math.round(b[0]), Math.round(b[1]), Math.round(b[2])];
    })));
  }

  function legend() {
    var el = document.getElementById("legend"); if (!el) return;
    // cluster ids may have gaps (a cluster emptied since the fit): colour by id, as draw() does
    var keys = bySection ? data.sections.map(function (s, i) { return [i, s || "(no section)"]; })
                         : data.clusters.map(function (c) { return [c.id, c.label + " (" + c.size + ")"]; });
    el.innerHTML = "";
    keys.forEach(function (k) {
      var name = k[1], s = document.createElement("span"); s.className = "key";
      var dot = document.createElement("i"); dot.style.background = colour(k[0]);
      s.appendChild(dot); s.appendChild(document.createTextNode(name)); el.appendChild(s);
    });
  }

  function nearest(mx, my) {
    var best = -1, bestD = 64;
    for (var i = 0; i < px.length; i++) {
      var dx = px[i] - mx, dy = py[i] - my, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }

  function onMove(ev) {
    var rect = canvas.getBoundingClientRect(), i = nearest(ev.clientX - rect.left, ev.clientY - rect.top);
    if (i === hover) return;
    hover = i; draw();
    if (i < 0) { tip.hidden = true; canvas.style.cursor = "default"; return; }
    canvas.style.cursor = "pointer";
    tip.innerHTML = "";
    var b = document.createElement("b"); b.textContent = data.titles[i]; tip.appendChild(b);
    if (data.notes[i]) { var p = document.createElement("div"); p.textContent = data.notes[i]; tip.appendChild(p); }
    var w = document.createElement("code"); w.textContent = data.where[i]; tip.appendChild(w);
    tip.style.left = Math.min(px[i] + 12, W - 260) + "px"; tip.style.top = (py[i] + 12) + "px";
    tip.hidden = false;
  }

  function onClick(ev) {
    var rect = canvas.getBoundingClientRect(), i = nearest(ev.clientX - rect.left, ev.clientY - rect.top);
    if (i < 0) return;
    if (opts.paperUrl) { window.location.href = opts.paperUrl + encodeURI(data.ids[i]); return; }
    var d = document.getElementById("detail"); if (!d) return;
    d.innerHTML = "";
    var h = document.createElement("h2"); h.textContent = data.titles[i]; d.appendChild(h);
    var n = document.createElement("p"); n.textContent = data.notes[i]; d.appendChild(n);
    var w = document.createElement("code"); w.textContent = data.where[i]; d.appendChild(w);
  }

  function status(text) { var s = document.getElementById("map-status"); if (s) s.textContent = text; }

  function search(q) {
    q = q.trim();
    if (!q) { highlighted = null; status(""); draw(); return; }
    if (opts.askUrl) {
      fetch(opts.askUrl + "?k=30&q=" + encodeURIComponent(q)).then(function (r) { return r.json(); })
        .then(function (hits) {
          if (!Array.isArray(hits)) { status(hits.error || "error"); return; }
          highlighted = new Set(hits.map(function (h) { return h.id; }));
          status(hits.length + " papers highlighted"); draw();
        });
      return;
    }
    var low = q.toLowerCase(); highlighted = new Set();
    for (var i = 0; i < data.ids.length; i++)
      if ((data.titles[i] + " " + data.notes[i]).toLowerCase().indexOf(low) >= 0) highlighted.add(data.ids[i]);
    status(highlighted.size + " papers highlighted"); draw();
  }

  function ready() {
    canvas = document.getElementById("map"); ctx = canvas.getContext("2d"); tip = document.getElementById("tip");
    layout(); draw(); legend();
    canvas.dataset.points = String(data.x.length);
    canvas.dataset.clusters = String(data.clusters.length);
    document.body.dataset.mapReady = "1";
    status(data.x.length + " papers, " + data.clusters.length + " clusters");
    canvas.addEventListener("mousemove", onMove);
    canvas.addEventListener("mouseleave", function () { hover = -1; tip.hidden = true; draw(); });
    canvas.addEventListener("click", onClick);
    var box = document.getElementById("map-search"), timer = null;
    box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { search(box.value); }, 250); });
    box.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(timer); search(box.value); } });
    document.getElementById("by-section").addEventListener("change", function (ev) {
      bySection = ev.target.checked; draw(); legend();
    });
    window.addEventListener("resize", function () { layout(); draw(); });
  }

  function start(o) {
    opts = o;
    if (o.data) { data = o.data; ready(); return; }
    fetch(o.dataUrl).then(function (r) { return r.json(); }).then(function (d) {
      if (d.error) { status(d.error); return; }
      data = d; ready();
    });
  }

  return { start: start };
})();

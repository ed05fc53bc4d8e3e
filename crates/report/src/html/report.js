// leakscope's HTML report: draws the page from the JSON object in #leakscope-data (its shape
// is `Page` in crates/report/src/html.rs). No library and no request: the page works offline.
// Sections render the first time their tab is shown; tables show their first rows until asked
// for more; the flamegraph is drawn on a canvas, skipping every frame narrower than half a
// pixel, so that a profile with 100,000 stacks stays fast.
"use strict";
(function () {
  var KINDS = ["definitely lost", "indirectly lost", "possibly lost", "still reachable", "suppressed"];
  var KIND_CLASS = ["def", "ind", "pos", "reach", "supp"];
  var ROWS_AT_ONCE = 50;
  var SVG = "http://www.w3.org/2000/svg";

  function failed(message) {
    document.body.setAttribute("data-render-error", message);
    var banner = document.createElement("div");
    banner.className = "error-banner";
    banner.textContent = "The report could not be drawn: " + message;
    document.body.insertBefore(banner, document.body.firstChild);
  }
  window.addEventListener("error", function (event) {
    failed(String(event.message || event.error));
  });

  // ---- small helpers ----

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (key === "text") node.textContent = attrs[key];
        else if (key === "class") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    return node;
  }
  function plural(n, one, many) {
    return thousands(n) + " " + (n === 1 ? one : many);
  }
  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function bytes(n) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var value = Math.abs(n), unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    if (unit === 0) return (n < 0 ? "-" : "") + thousands(Math.round(value)) + (Math.round(value) === 1 ? " byte" : " bytes");
    return (n < 0 ? "-" : "") + value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0) + " " + units[unit];
  }
  function rate(bytesPerS) {
    return bytes(bytesPerS) + "/s";
  }
  function duration(s) {
    if (s === null || s === undefined) return "";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 7200) return (s / 60).toFixed(0) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " days";
  }
  // The call-path tree of a process (see `nodes` in html.rs) as two arrays: each node's
  // parent (-1 at the outermost frame) and frame.
  function decodeNodes(process) {
    var n = process.nodes.length / 2;
    process.parentOf = new Int32Array(n);
    process.frameOf = new Int32Array(n);
    for (var i = 0; i < n; i++) {
      var back = process.nodes[2 * i];
      process.parentOf[i] = back === 0 ? -1 : i - back;
      process.frameOf[i] = process.nodes[2 * i + 1];
    }
  }
  // A stack's frame indices, innermost first, from the node of its innermost frame.
  function framesOf(process, node) {
    var frames = [];
    for (; node >= 0; node = process.parentOf[node]) frames.push(process.frameOf[node]);
    return frames;
  }
  // The frame to name a site by: the innermost one with a function name (the symbolizer has
  // already dropped the allocator's own frames), else the innermost.
  function siteLabel(process, stack) {
    var frames = framesOf(process, stack);
    if (frames.length === 0) return { name: "(no frames)", where: "" };
    var chosen = frames[0];
    for (var i = 0; i < frames.length; i++) {
      var label = process.frames[frames[i]][0];
      if (!/^0x[0-9a-f]+$/.test(label) && !/\+0x[0-9a-f]+$/.test(label)) { chosen = frames[i]; break; }
    }
    return { name: short(process.frames[chosen][0]), where: process.frames[chosen][1] };
  }
  // A C++ name can be a paragraph: lists and legends show its start (stacks show it whole).
  function short(name) {
    return name.length > 90 ? name.slice(0, 88) + "\u2026" : name;
  }
  function stackBlock(process, stack) {
    var pre = el("pre", { class: "stack" });
    var frames = framesOf(process, stack);
    if (frames.length === 0) pre.appendChild(document.createTextNode("(no frames recorded)"));
    frames.forEach(function (index, i) {
      var frame = process.frames[index];
      var line = el("span", { class: frame[2] === "p" ? "py" : "" }, (i === 0 ? "at " : "by ") + frame[0]);
      pre.appendChild(line);
      if (frame[1]) pre.appendChild(el("span", { class: "loc" }, " (" + frame[1] + ")"));
      pre.appendChild(document.createTextNode("\n"));
    });
    return pre;
  }
  function processTitle(process) {
    var command = process.command.length ? process.command.join(" ") : "(unknown command)";
    return "Process " + process.pid + ": " + command;
  }
  function exitSentence(process) {
    var how = process.exit_signal !== null ? "Killed by signal " + process.exit_signal
      : process.exit_code !== null ? "Exited with code " + process.exit_code : "The end was not seen";
    if (process.duration_s !== null) how += " after " + duration(process.duration_s);
    if (process.started_by !== "run") how += " (started by " + process.started_by + ")";
    return how + ".";
  }

  // ---- a table whose rows expand to a stack ----

  function expandingTable(headers, rows, columns, stackOf, process) {
    var table = el("table");
    var head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", { class: h[1] || "" }, h[0])); });
    table.appendChild(el("thead", null, head));
    var body = el("tbody");
    table.appendChild(body);
    var shown = 0;
    var more = el("div", { class: "more" });
    function showMore() {
      var end = Math.min(rows.length, shown + ROWS_AT_ONCE);
      for (; shown < end; shown++) addRow(rows[shown]);
      more.textContent = "";
      if (shown < rows.length) {
        var button = el("button", { type: "button" }, "Show " + Math.min(ROWS_AT_ONCE, rows.length - shown) + " more of " + thousands(rows.length - shown));
        button.addEventListener("click", showMore);
        more.appendChild(button);
      }
    }
    function addRow(row) {
      var tr = el("tr", { class: "row" });
      columns(row).forEach(function (cell) { tr.appendChild(cell); });
      var open = null;
      tr.addEventListener("click", function () {
        if (open) { open.remove(); open = null; tr.classList.remove("open"); return; }
        var td = el("td", { colspan: String(headers.length) }, stackBlock(process, stackOf(row)));
        open = el("tr", { class: "stackrow" }, td);
        tr.after(open);
        tr.classList.add("open");
      });
      body.appendChild(tr);
    }
    showMore();
    return el("div", null, table, more);
  }
  function siteCell(process, stack) {
    var site = siteLabel(process, stack);
    return el("td", { class: "site" }, el("span", { class: "mono" }, site.name), site.where ? el("span", { class: "where" }, " " + site.where) : null);
  }
  function num(text) { return el("td", { class: "num" }, text); }

  // ---- line charts (SVG) ----

  var PALETTE = ["#2457c5", "#7b8794", "#c0262d", "#c46a00", "#7a3db8", "#0f8a7e", "#b5338a", "#5b7f00", "#a05a2c"];

  // series: [{name, points: [[t, y]...], color, dash}]
  function lineChart(series, options) {
    var W = 960, H = 300, M = { l: 74, r: 16, t: 12, b: 30 };
    var box = el("div", { class: "chart" });
    var legend = el("div", { class: "legend" });
    var tooltip = el("div", { class: "tooltip" });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": options.label });
    box.appendChild(legend);
    box.appendChild(root);
    box.appendChild(tooltip);
    var visible = series.map(function () { return true; });
    var tMin = Infinity, tMax = -Infinity;
    series.forEach(function (s) {
      s.points.forEach(function (p) { if (p[0] < tMin) tMin = p[0]; if (p[0] > tMax) tMax = p[0]; });
    });
    if (!(tMax > tMin)) { tMax = tMin + 1; }
    function draw() {
      while (root.firstChild) root.removeChild(root.firstChild);
      var yMax = 0;
      series.forEach(function (s, i) {
        if (!visible[i]) return;
        s.points.forEach(function (p) { if (p[1] > yMax) yMax = p[1]; });
      });
      // The step is at least a quarter of the largest value: four steps cover it.
      var nice = niceStep(yMax / 4), step = nice.step;
      yMax = step * 4;
      var x = function (t) { return M.l + (t - tMin) / (tMax - tMin) * (W - M.l - M.r); };
      var y = function (v) { return H - M.b - v / yMax * (H - M.t - M.b); };
      var grid = svg("g", { class: "grid" }), axis = svg("g", { class: "axis" });
      for (var k = 0; k <= 4; k++) {
        var v = step * k, yy = y(v);
        grid.appendChild(svg("line", { x1: M.l, x2: W - M.r, y1: yy, y2: yy }));
        var label = svg("text", { x: M.l - 6, y: yy + 4, "text-anchor": "end" });
        label.textContent = axisBytes(v, nice.unit);
        axis.appendChild(label);
        var t = tMin + (tMax - tMin) * k / 4;
        var tl = svg("text", { x: x(t), y: H - 10, "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle" });
        tl.textContent = duration(t);
        axis.appendChild(tl);
      }
      root.appendChild(grid);
      root.appendChild(axis);
      var lines = 0;
      series.forEach(function (s, i) {
        if (!visible[i] || s.points.length === 0) return;
        var d = s.points.map(function (p, j) { return (j ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1); }).join("");
        var path = svg("path", { d: d, class: "series", stroke: s.color });
        if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
        var title = svg("title");
        title.textContent = s.name;
        path.appendChild(title);
        root.appendChild(path);
        lines++;
      });
      root.setAttribute("data-lines", String(lines));
      var cursor = svg("line", { y1: M.t, y2: H - M.b, stroke: "#999", "stroke-dasharray": "3 3", visibility: "hidden" });
      root.appendChild(cursor);
      var overlay = svg("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "transparent" });
      root.appendChild(overlay);
      overlay.addEventListener("mousemove", function (event) {
        var rect = root.getBoundingClientRect();
        var px = (event.clientX - rect.left) / rect.width * W;
        var t = tMin + (px - M.l) / (W - M.l - M.r) * (tMax - tMin);
        cursor.setAttribute("x1", px); cursor.setAttribute("x2", px);
        cursor.setAttribute("visibility", "visible");
        var text = duration(Math.max(t, 0));
        series.forEach(function (s, i) {
          if (!visible[i]) return;
          var value = valueAt(s.points, t);
          if (value !== null) text += "\n" + s.name + ": " + bytes(value);
        });
        tooltip.textContent = text;
        tooltip.style.display = "block";
        var left = event.clientX - box.getBoundingClientRect().left + 14;
        tooltip.style.left = Math.min(left, box.clientWidth - 260) + "px";
        tooltip.style.top = (event.clientY - box.getBoundingClientRect().top + 10) + "px";
      });
      overlay.addEventListener("mouseleave", function () {
        cursor.setAttribute("visibility", "hidden");
        tooltip.style.display = "none";
      });
    }
    series.forEach(function (s, i) {
      var item = el("span", { title: "show or hide" }, el("i", { style: "background:" + s.color }), s.name);
      item.addEventListener("click", function () {
        visible[i] = !visible[i];
        item.classList.toggle("off", !visible[i]);
        draw();
      });
      legend.appendChild(item);
    });
    draw();
    return box;
  }
  // A round step near `raw` for an axis of bytes: 1, 2 or 5 times a power of ten of bytes,
  // KiB, MiB..., at least one byte (1000 of a unit becomes 1 of the next). Returns the step
  // and the unit's size, in which the axis is labelled.
  function niceStep(raw) {
    if (!(raw > 1)) return { step: 1, unit: 1 };
    var unit = 1;
    while (raw / unit >= 1000 && unit < Math.pow(1024, 4)) unit *= 1024;
    var scaled = raw / unit;
    var power = Math.pow(10, Math.floor(Math.log10(scaled)));
    var m = scaled / power;
    var step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
    if (step >= 1000) { step = 1; unit *= 1024; }
    return { step: step * unit, unit: unit };
  }
  function axisBytes(value, unit) {
    var names = { 1: "bytes", 1024: "KiB", 1048576: "MiB", 1073741824: "GiB", 1099511627776: "TiB" };
    var n = value / unit;
    if (unit === 1 && n === 1) return "1 byte";
    return (unit === 1 ? thousands(Math.round(n)) : String(Math.round(n * 100) / 100)) + " " + names[unit];
  }
  // The value of a series at time t: the last point at or before t (snapshots are steps).
  function valueAt(points, t) {
    var lo = 0, hi = points.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (points[mid][0] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found < 0 ? null : points[found][1];
  }

  // ---- flamegraph (canvas) ----

  // The flamegraph's tree for weights `[[stack node, bytes]...]`: a node's value is the sum
  // of the weights of the stacks through it. The page's nodes already form the tree of call
  // paths (parents first), so this is one pass down to add and one pass up to sum.
  function buildTree(process, weighted) {
    var parentOf = process.parentOf, frameOf = process.frameOf, n = parentOf.length;
    var value = new Float64Array(n), rootSelf = 0, i;
    weighted.forEach(function (entry) {
      if (!(entry[1] > 0)) return;
      if (entry[0] >= 0) value[entry[0]] += entry[1]; else rootSelf += entry[1];
    });
    for (i = n - 1; i >= 0; i--) if (parentOf[i] >= 0) value[parentOf[i]] += value[i];
    var root = { frame: -1, value: rootSelf, children: [], parent: null };
    var objects = new Array(n);
    for (i = 0; i < n; i++) {
      if (!(value[i] > 0)) continue;
      var parentIndex = parentOf[i];
      var parent = parentIndex >= 0 ? objects[parentIndex] : root;
      var node = { frame: frameOf[i], value: value[i], children: [], parent: parent };
      objects[i] = node;
      parent.children.push(node);
      if (parentIndex < 0) root.value += value[i];
    }
    var byValue = function (a, b) { return b.value - a.value; };
    root.children.sort(byValue);
    objects.forEach(function (o) { if (o && o.children.length > 1) o.children.sort(byValue); });
    return root;
  }
  function hue(text, python) {
    var h = 0;
    for (var i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
    var r = Math.abs(h % 1000) / 1000;
    return python ? "hsl(" + (200 + r * 30) + ",55%," + (62 + r * 14) + "%)"
      : "hsl(" + (12 + r * 36) + ",78%," + (56 + r * 14) + "%)";
  }

  // Options in the address's fragment, so that a link can open the page on a view:
  // #process=N (the tab, 0 for the root), weight=lost|live|reachable, search=REGEX.
  var OPTIONS = (function () {
    var options = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) options[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1));
    });
    return options;
  })();

  function flamegraph(process) {
    var ROW = 18;
    var box = el("div");
    var controls = el("div", { class: "controls" });
    var weightSelect = el("select", { "aria-label": "what the flamegraph weighs" });
    var choices = [];
    var lost = process.leaks.filter(function (l) { return l[0] <= 2; }).map(function (l) { return [l[3], l[1]]; });
    var reachable = process.leaks.filter(function (l) { return l[0] === 3; }).map(function (l) { return [l[3], l[1]]; });
    if (lost.length) choices.push({ key: "lost", name: "lost bytes at exit (definitely, indirectly, possibly)", data: function () { return lost; } });
    if (process.moments.length) choices.push({ key: "live", name: "live bytes at a moment", moment: true });
    if (reachable.length) choices.push({ key: "reachable", name: "still reachable bytes at exit", data: function () { return reachable; } });
    if (choices.length === 0) {
      box.appendChild(el("p", { class: "empty" }, "Nothing to draw: no block was lost or left at exit, and no snapshot of live memory was taken."));
      return box;
    }
    choices.forEach(function (c, i) { weightSelect.appendChild(el("option", { value: String(i) }, c.name)); });
    choices.forEach(function (c, i) { if (c.key === OPTIONS.weight) weightSelect.value = String(i); });
    var slider = el("input", { type: "range", min: "0", max: String(Math.max(process.moments.length - 1, 0)), step: "1" });
    var lastMoment = process.moments.length - 1;
    process.moments.forEach(function (m, i) { if (m.kind === "last") lastMoment = i; });
    slider.value = String(Math.max(lastMoment, 0));
    var momentLabel = el("span", { class: "mono" });
    var search = el("input", { type: "search", placeholder: "search frames (regex)", "aria-label": "search frames" });
    var reset = el("button", { type: "button", class: "link" }, "Reset zoom");
    var momentControls = el("span", null, el("label", null, "moment "), slider, " ", momentLabel);
    controls.appendChild(el("label", null, "weigh by "));
    controls.appendChild(weightSelect);
    controls.appendChild(momentControls);
    controls.appendChild(search);
    controls.appendChild(reset);
    var status = el("div", { class: "flame-status" });
    var holder = el("div", { class: "flame" });
    var canvas = el("canvas", { role: "img", "aria-label": "flamegraph, the outermost frame at the top" });
    var tooltip = el("div", { class: "tooltip" });
    holder.appendChild(canvas);
    holder.appendChild(tooltip);
    box.appendChild(controls);
    box.appendChild(status);
    box.appendChild(holder);

    var tree = null, focus = null, matcher = null, boxes = [];
    function rebuild() {
      var choice = choices[Number(weightSelect.value)];
      momentControls.style.display = choice.moment ? "" : "none";
      var data;
      if (choice.moment) {
        var moment = process.moments[Number(slider.value)];
        momentLabel.textContent = duration(moment.t_s) + (moment.kind === "peak" ? " (peak)" : moment.kind === "last" ? " (last)" : "") + ", " + bytes(moment.live_bytes) + " live";
        data = [];
        for (var k = 0; k + 1 < moment.sites.length; k += 2) data.push([moment.sites[k], moment.sites[k + 1]]);
      } else {
        data = choice.data();
      }
      tree = buildTree(process, data);
      focus = tree;
      draw();
    }
    function maxDepth(node) {
      var best = 0, stack = [[node, 0]];
      while (stack.length) {
        var top = stack.pop();
        if (top[1] > best) best = top[1];
        top[0].children.forEach(function (c) { stack.push([c, top[1] + 1]); });
      }
      return best;
    }
    function ancestors(node) {
      var chain = [];
      for (var n = node.parent; n && n.frame !== -1; n = n.parent) chain.unshift(n);
      return chain;
    }
    function label(node) {
      return node.frame === -1 ? "all" : process.frames[node.frame][0];
    }
    function draw() {
      var ratio = window.devicePixelRatio || 1;
      var width = Math.max(holder.clientWidth, 300);
      var chain = ancestors(focus);
      var rows = chain.length + 1 + maxDepth(focus);
      var height = Math.min(rows, 400) * ROW;
      canvas.width = Math.floor(width * ratio);
      canvas.height = Math.floor(height * ratio);
      canvas.style.height = height + "px";
      var ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.font = "12px ui-monospace, Menlo, Consolas, monospace";
      ctx.textBaseline = "middle";
      boxes = [];
      var matched = 0;
      function paint(node, x, w, depth, dim) {
        var name = label(node);
        var hit = matcher !== null && node.frame !== -1 && matcher.test(name);
        var python = node.frame !== -1 && process.frames[node.frame][2] === "p";
        ctx.fillStyle = hit ? "#e040fb" : dim ? "#d9dde3" : node.frame === -1 ? "#c9ced6" : hue(name, python);
        ctx.fillRect(x, depth * ROW, Math.max(w - 0.5, 0.5), ROW - 1);
        if (w > 36) {
          ctx.fillStyle = "#1d1f23";
          var text = name, room = Math.floor((w - 6) / 7.2);
          if (text.length > room) text = text.slice(0, Math.max(room - 1, 1)) + "\u2026";
          ctx.fillText(text, x + 3, depth * ROW + ROW / 2);
        }
        boxes.push([x, depth, w, node]);
        return hit;
      }
      chain.forEach(function (node, depth) { paint(node, 0, width, depth, true); });
      var base = chain.length;
      var stack = [[focus, 0, width, base, false]];
      while (stack.length) {
        var item = stack.pop();
        var node = item[0], x = item[1], w = item[2], depth = item[3];
        if (depth >= 400) continue;
        var hit = paint(node, x, w, depth, false);
        var counted = item[4];
        if (hit && !counted) { matched += node.value; counted = true; }
        var children = node.children;
        var cx = x;
        for (var i = 0; i < children.length; i++) {
          var cw = w * children[i].value / node.value;
          if (cw >= 0.5) stack.push([children[i], cx, cw, depth + 1, counted]);
          else if (matcher !== null && !counted) matched += searchHidden(children[i]);
          cx += cw;
        }
      }
      canvas.setAttribute("data-boxes", String(boxes.length));
      var total = focus.value;
      var text = bytes(total) + " in view";
      if (focus !== tree) text += " (zoomed on " + label(focus) + "; click the top bar or Reset zoom to zoom out)";
      if (matcher !== null) text += "; frames matching the search: " + bytes(matched) + " (" + (total ? (100 * matched / total).toFixed(1) : "0") + "%)";
      status.textContent = text + ". Click a frame to zoom.";
    }
    // Search hits under a frame too narrow to draw still count in the matched total.
    function searchHidden(node) {
      if (matcher.test(label(node))) return node.value;
      var sum = 0;
      node.children.forEach(function (c) { sum += searchHidden(c); });
      return sum;
    }
    function boxAt(event) {
      var rect = canvas.getBoundingClientRect();
      var x = event.clientX - rect.left, depth = Math.floor((event.clientY - rect.top) / ROW);
      for (var i = 0; i < boxes.length; i++) {
        var b = boxes[i];
        if (b[1] === depth && x >= b[0] && x < b[0] + b[2]) return b[3];
      }
      return null;
    }
    canvas.addEventListener("click", function (event) {
      var node = boxAt(event);
      if (!node) return;
      focus = node === focus && node.parent ? node.parent : node;
      draw();
    });
    canvas.addEventListener("mousemove", function (event) {
      var node = boxAt(event);
      if (!node) { tooltip.style.display = "none"; return; }
      var total = tree.value || 1;
      var where = node.frame === -1 ? "" : process.frames[node.frame][1];
      tooltip.textContent = label(node) + (where ? "\n" + where : "") + "\n" + bytes(node.value) + " (" + (100 * node.value / total).toFixed(1) + "% of all)";
      tooltip.style.display = "block";
      var rect = holder.getBoundingClientRect();
      tooltip.style.left = Math.min(event.clientX - rect.left + 12, holder.clientWidth - 320) + "px";
      tooltip.style.top = (event.clientY - rect.top + 14) + "px";
    });
    canvas.addEventListener("mouseleave", function () { tooltip.style.display = "none"; });
    weightSelect.addEventListener("change", rebuild);
    slider.addEventListener("input", rebuild);
    reset.addEventListener("click", function () { focus = tree; draw(); });
    search.addEventListener("input", function () {
      try { matcher = search.value ? new RegExp(search.value, "i") : null; search.setCustomValidity(""); }
      catch (e) { matcher = null; search.setCustomValidity("not a regular expression"); }
      draw();
    });
    window.addEventListener("resize", function () { if (box.offsetParent !== null) draw(); });
    if (OPTIONS.search) {
      search.value = OPTIONS.search;
      try { matcher = new RegExp(OPTIONS.search, "i"); } catch (e) { matcher = null; }
    }
    box.redraw = rebuild;
    return box;
  }

  // ---- one process ----

  function renderProcess(process, section) {
    decodeNodes(process);
    section.appendChild(el("h2", null, processTitle(process)));
    section.appendChild(el("p", null, exitSentence(process)));

    // The verdict first.
    var s = process.summary;
    var lost = s[0][0] + s[1][0], lostBlocks = s[0][1] + s[1][1];
    var growing = process.growth.filter(function (g) { return g.verdict === "growing"; });
    var verdict = el("div", { class: "verdict" });
    if (process.leak_check !== "complete") {
      verdict.appendChild(el("span", { class: "warn" }, "The leak check is " + process.leak_check.replace(/_/g, " ") + ". "));
    }
    verdict.appendChild(lost > 0
      ? el("span", { class: "bad" }, bytes(lost) + " lost in " + plural(lostBlocks, "block", "blocks") + ". ")
      : el("span", { class: "good" }, "No block lost. "));
    if (growing.length) {
      var fastest = growing[0];
      verdict.appendChild(el("span", { class: "bad" }, plural(growing.length, "site keeps", "sites keep") + " growing"));
      verdict.appendChild(document.createTextNode(" (the fastest " + rate(fastest.bytes_per_s) +
        (fastest.exhaustion_s !== null ? "; at that rate memory runs out in " + duration(fastest.exhaustion_s) : "") + ")."));
    } else if (process.timeline.length >= 2) {
      verdict.appendChild(el("span", { class: "good" }, "No site keeps growing."));
    }
    process.scripts.forEach(function (isolate) {
      var js = isolate.sites.filter(function (x) { return x.verdict === "growing"; });
      var listenerLeaks = isolate.listeners.filter(function (x) { return x.verdict === "growing"; });
      var words = [];
      if (js.length) words.push(plural(js.length, "JavaScript site keeps", "JavaScript sites keep") + " growing (the fastest " + rate(js[0].bytes_per_s) +
        (js[0].heap_exhaustion_s !== null ? "; the V8 heap is full in " + duration(js[0].heap_exhaustion_s) : "") + ")");
      if (listenerLeaks.length) words.push(plural(listenerLeaks.length, "listener leak", "listener leaks") + " (" +
        listenerLeaks.slice(0, 2).map(function (l) { return thousands(l.listeners_last) + " '" + l.event + "' listeners on " + l.emitter; }).join(", ") + ")");
      if (words.length) {
        verdict.appendChild(el("br"));
        verdict.appendChild(el("span", { class: "bad" }, (isolate.thread ? "Worker " + isolate.thread + ": " : "") + words.join("; ") + "."));
      }
    });
    if (process.java && process.java.status === "watched") {
      var classes = process.java.classes.filter(function (c) { return c.verdict === "growing"; });
      if (classes.length) {
        verdict.appendChild(el("br"));
        verdict.appendChild(el("span", { class: "bad" }, plural(classes.length, "Java class keeps", "Java classes keep") + " growing (the fastest " +
          classes[0].class + " at " + rate(classes[0].bytes_per_s) + (classes[0].heap_exhaustion_s !== null ? "; the Java heap is full in " + duration(classes[0].heap_exhaustion_s) : "") + ")."));
      }
    }
    section.appendChild(verdict);
    var cards = el("div", { class: "cards" });
    KINDS.forEach(function (kind, i) {
      cards.appendChild(el("div", { class: "card " + KIND_CLASS[i] },
        el("div", { class: "k" }, kind), el("div", { class: "v" }, bytes(s[i][0])),
        el("div", { class: "b" }, plural(s[i][1], "block", "blocks"))));
    });
    section.appendChild(cards);
    process.leak_check_reasons.forEach(function (r) { section.appendChild(el("div", { class: "note" }, r)); });
    if (process.sample_rate) {
      section.appendChild(el("div", { class: "note" }, "Sampling mode (one stack per " + bytes(process.sample_rate) + " on average): per-site figures are estimates; totals are exact."));
    }
    if (growing.length) {
      var list = el("ul", { class: "growing" });
      growing.slice(0, 5).forEach(function (g) {
        var site = siteLabel(process, g.stack);
        list.appendChild(el("li", null, el("span", { class: "mono" }, site.name), " " + site.where + ": " + rate(g.bytes_per_s) +
          ", " + bytes(g.live_bytes_last) + " live" + (g.exhaustion_s !== null ? ", memory runs out in " + duration(g.exhaustion_s) : "")));
      });
      section.appendChild(list);
    }

    // Memory over time.
    if (process.timeline.length >= 2) {
      section.appendChild(el("h2", null, "Memory over time"));
      var series = [
        { name: "live heap", points: process.timeline.map(function (p) { return [p[0], p[1]]; }), color: PALETTE[0] },
        { name: "resident set (RSS)", points: process.timeline.map(function (p) { return [p[0], p[2]]; }), color: PALETTE[1], dash: "5 4" },
      ];
      process.growth.forEach(function (g, i) {
        if (g.series.length === 0) return;
        // Numbered as in the table below: sites often share a function.
        series.push({ name: "#" + (i + 1) + " " + g.verdict + ": " + siteLabel(process, g.stack).name, points: g.series, color: PALETTE[2 + (series.length - 2) % (PALETTE.length - 2)] });
      });
      section.appendChild(lineChart(series, { label: "live heap, RSS and the listed sites over time" }));
    }
    if (process.live_scans.length >= 1) {
      section.appendChild(el("h2", null, "Lost over time (live scans)"));
      var names = ["definitely lost", "indirectly lost", "possibly lost"];
      var colors = ["#c0262d", "#c46a00", "#a08000"];
      var lostSeries = names.map(function (name, k) {
        return { name: name, points: process.live_scans.map(function (p) { return [p[0], p[1 + k]]; }), color: colors[k] };
      });
      section.appendChild(lineChart(lostSeries, { label: "lost bytes at each live scan" }));
      var pauses = process.live_scans.map(function (p) { return p[4]; }).sort(function (a, b) { return a - b; });
      section.appendChild(el("p", null, plural(pauses.length, "scan", "scans") + "; median pause " + pauses[pauses.length >> 1].toFixed(1) + " ms, longest " + pauses[pauses.length - 1].toFixed(1) + " ms."));
    }

    // A Node.js process's JavaScript side, or a JVM's classes, come before its native sites.
    process.scripts.forEach(function (isolate) { renderScript(isolate, section); });
    if (process.java) renderJava(process.java, section);

    // Sites.
    if (process.growth.length) {
      section.appendChild(el("h2", null, "Sites over time"));
      section.appendChild(expandingTable(
        [["#", "num"], ["verdict"], ["rate", "num"], ["live at end", "num"], ["peak", "num"], ["blocks", "num"], ["runs out in", "num"], ["site"]],
        process.growth,
        function (g) {
          return [num(String(process.growth.indexOf(g) + 1)), el("td", null, el("span", { class: "pill " + g.verdict }, g.verdict)), num(rate(g.bytes_per_s)), num(bytes(g.live_bytes_last)),
            num(bytes(g.live_bytes_peak)), num(thousands(g.live_blocks_last)), num(duration(g.exhaustion_s)), siteCell(process, g.stack)];
        },
        function (g) { return g.stack; }, process));
    }
    if (process.lost_growth.length) {
      section.appendChild(el("h2", null, "Sites whose lost bytes kept rising"));
      section.appendChild(expandingTable([["kind"], ["rate", "num"], ["site"]], process.lost_growth,
        function (g) { return [el("td", null, g.kind.replace(/_/g, " ")), num(rate(g.bytes_per_s)), siteCell(process, g.stack)]; },
        function (g) { return g.stack; }, process));
    }

    // Leaks.
    section.appendChild(el("h2", null, "Leaks at exit"));
    if (process.leaks.length === 0) {
      section.appendChild(el("p", { class: "empty" }, process.leak_check === "not_run" ? "The leak check did not run." : "No block was left unfreed."));
    } else {
      var index = 0;
      section.appendChild(expandingTable(
        [["#", "num"], ["kind"], ["bytes", "num"], ["blocks", "num"], ["allocated at"]],
        process.leaks.map(function (l) { return { record: l, number: ++index }; }),
        function (row) {
          var l = row.record;
          return [num(String(row.number)), el("td", null, el("span", { class: "pill " + KIND_CLASS[l[0]] }, KINDS[l[0]])),
            num((l[4] ? "~" : "") + thousands(l[1])), num((l[4] ? "~" : "") + thousands(l[2])), siteCell(process, l[3])];
        },
        function (row) { return row.record[3]; }, process));
    }

    section.appendChild(el("h2", null, "Flamegraph"));
    var flame = flamegraph(process);
    section.appendChild(flame);

    if (process.notes.length) {
      section.appendChild(el("h2", null, "Notes"));
      process.notes.forEach(function (n) { section.appendChild(el("div", { class: "note" }, n)); });
    }
    return flame;
  }

  // A JVM's classes: their verdicts, the Java heap and the growing classes over time, and for
  // each class the path from a GC root and where its sampled objects were allocated.
  function renderJava(java, section) {
    section.appendChild(el("h2", null, "Java" + (java.version ? " (JDK " + java.version + (java.collector ? ", " + java.collector : "") + ")" : "")));
    if (java.status !== "watched") {
      section.appendChild(el("div", { class: "note" }, "The JVM was not watched (" + java.status.replace(/_/g, " ") + ")" + (java.reason ? ": " + java.reason : "") + ". The native report below is complete."));
      return;
    }
    var line = plural(java.histograms, "class histogram", "class histograms") + (java.max_heap_bytes ? "; max heap " + bytes(java.max_heap_bytes) : "");
    if (java.pauses_ms) line += "; each paused the program (a full collection): median " + java.pauses_ms[0] + " ms, longest " + java.pauses_ms[1] + " ms, " + java.pauses_ms[2] + " ms in all";
    section.appendChild(el("p", null, line + "."));
    var growing = java.classes.filter(function (c) { return c.verdict === "growing"; });
    if (growing.length) {
      section.appendChild(el("p", null, el("span", { class: "bad" }, plural(growing.length, "class keeps", "classes keep") + " growing"),
        ": the fastest " + growing[0].class + " at " + rate(growing[0].bytes_per_s) + (growing[0].heap_exhaustion_s !== null ? ", the Java heap full in " + duration(growing[0].heap_exhaustion_s) : "") + "."));
    }
    var lines = [{ name: "Java heap (histograms)", points: java.heap, color: PALETTE[0] }];
    java.classes.filter(function (c) { return c.verdict !== "bounded" && c.series.length > 1; }).slice(0, 6).forEach(function (c, i) {
      lines.push({ name: c.verdict + ": " + short(c.class), points: c.series, color: PALETTE[2 + i % (PALETTE.length - 2)] });
    });
    if (java.heap.length >= 2) section.appendChild(lineChart(lines, { label: "the Java heap and its growing classes over time" }));
    if (!java.classes.length) return;
    var t = el("table"), head = el("tr");
    [["verdict"], ["class"], ["bytes/s", "num"], ["instances/s", "num"], ["instances", "num"], ["bytes", "num"], ["heap full in", "num"]].forEach(function (h) {
      head.appendChild(el("th", { class: h[1] || "" }, h[0]));
    });
    t.appendChild(el("thead", null, head));
    var body = el("tbody");
    java.classes.slice(0, ROWS_AT_ONCE).forEach(function (c) {
      var tr = el("tr", { class: "row" }), open = null;
      [el("td", null, el("span", { class: "pill " + c.verdict }, c.verdict)), el("td", { class: "site mono" }, c.class), num(rate(c.bytes_per_s)),
        num(c.instances_per_s.toFixed(1)), num(thousands(c.instances_last)), num(bytes(c.bytes_last)), num(duration(c.heap_exhaustion_s))].forEach(function (cell) { tr.appendChild(cell); });
      tr.addEventListener("click", function () {
        if (open) { open.remove(); open = null; tr.classList.remove("open"); return; }
        var box = el("div");
        box.appendChild(el("div", null, c.held_by ? "Held by: " + c.held_by : "No sampled object of this class was old enough to have a path to a GC root."));
        if (c.allocated) {
          box.appendChild(el("div", null, "Allocated (sampled " + c.allocated[0] + "):"));
          box.appendChild(el("pre", { class: "stack" }, c.allocated[1].map(function (f, i) { return (i ? "by " : "at ") + f; }).join("\n")));
        }
        open = el("tr", { class: "stackrow" }, el("td", { colspan: "7" }, box));
        tr.after(open);
        tr.classList.add("open");
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    section.appendChild(t);
  }

  // A JavaScript site is named by the innermost frame of the script's own code: V8's builtins
  // (`repeat`, `push`: no script) made the bytes, the script's function asked for them.
  function ownFrame(frames) {
    for (var i = 0; i < frames.length; i++) if (frames[i][1] !== "native") return frames[i];
    return frames[0] || ["(no frames)", ""];
  }

  // The JavaScript side of a Node.js process: one isolate's sites and listeners.
  function renderScript(isolate, section) {
    var thread = isolate.thread === 0 ? "main thread" : "worker thread " + isolate.thread;
    section.appendChild(el("h2", null, "JavaScript (node " + isolate.version + ", " + thread + ")"));
    section.appendChild(el("p", null, plural(isolate.samples, "sample", "samples") + " of V8's sampling heap profiler (one per " +
      bytes(isolate.sampling_bytes) + " allocated on average); V8 heap " + bytes(isolate.heap_used) + " of " + bytes(isolate.heap_limit) + " at the end."));
    isolate.errors.forEach(function (e) { section.appendChild(el("div", { class: "note" }, e)); });
    function stackOf(frames) {
      var pre = el("pre", { class: "stack" });
      frames.forEach(function (f, i) {
        pre.appendChild(el("span", { class: "py" }, (i === 0 ? "at " : "by ") + f[0]));
        pre.appendChild(el("span", { class: "loc" }, " (" + f[1] + ")\n"));
      });
      return pre;
    }
    function table(headers, rows, cells, frames) {
      var t = el("table"), head = el("tr");
      headers.forEach(function (h) { head.appendChild(el("th", { class: h[1] || "" }, h[0])); });
      t.appendChild(el("thead", null, head));
      var body = el("tbody");
      rows.slice(0, ROWS_AT_ONCE).forEach(function (row) {
        var tr = el("tr", { class: "row" }), open = null;
        cells(row).forEach(function (c) { tr.appendChild(c); });
        tr.addEventListener("click", function () {
          if (open) { open.remove(); open = null; tr.classList.remove("open"); return; }
          open = el("tr", { class: "stackrow" }, el("td", { colspan: String(headers.length) }, frames(row)));
          tr.after(open);
          tr.classList.add("open");
        });
        body.appendChild(tr);
      });
      t.appendChild(body);
      return t;
    }
    var growing = isolate.sites.filter(function (s) { return s.series.length > 1 && s.verdict !== "bounded"; }).slice(0, 6);
    if (growing.length) {
      section.appendChild(lineChart(growing.map(function (s, i) {
        return { name: "#" + (i + 1) + " " + s.verdict + ": " + ownFrame(s.frames)[0], points: s.series, color: PALETTE[2 + i % (PALETTE.length - 2)] };
      }), { label: "live bytes of the JavaScript sites over time" }));
    }
    if (isolate.sites.length) {
      section.appendChild(table(
        [["#", "num"], ["verdict"], ["rate", "num"], ["live at end", "num"], ["peak", "num"], ["V8 heap full in", "num"], ["site"]],
        isolate.sites,
        function (s) {
          return [num(String(isolate.sites.indexOf(s) + 1)), el("td", null, el("span", { class: "pill " + s.verdict }, s.verdict)), num(rate(s.bytes_per_s)),
            num(bytes(s.live_bytes_last)), num(bytes(s.live_bytes_peak)), num(duration(s.heap_exhaustion_s)),
            el("td", { class: "site" }, el("span", { class: "mono" }, ownFrame(s.frames)[0]), el("span", { class: "where" }, " " + ownFrame(s.frames)[1]))];
        },
        function (s) { return stackOf(s.frames); }));
    }
    if (isolate.snapshots.length) {
      section.appendChild(el("h2", null, "Heap snapshots (node " + thread + ")"));
      section.appendChild(el("p", null, isolate.snapshots.map(function (s) {
        return bytes(s[1]) + " of V8 heap at " + s[0].toFixed(1) + " s, paused " + s[2].toFixed(0) + " ms";
      }).join("; ") + (isolate.compared ? ". The last two compared: the constructors whose bytes rose most, with the shortest path from the GC roots to their new instances (click a row)." : ".")));
      if (isolate.compared && !isolate.constructors.some(function (c) { return c.growing; })) {
        section.appendChild(el("p", null, el("span", { class: "good" }, "No constructor grew between them.")));
      }
      if (isolate.constructors.length) {
        section.appendChild(table(
          [["verdict"], ["constructor"], ["instances before", "num"], ["after", "num"], ["new", "num"], ["bytes before", "num"], ["after", "num"], ["allocated at"]],
          isolate.constructors,
          function (c) {
            var site = c.site === null ? null : isolate.sites[c.site];
            return [el("td", null, el("span", { class: "pill " + (c.growing ? "growing" : "bounded") }, c.growing ? "growing" : "grew a little")),
              el("td", { class: "mono" }, c.name), num(thousands(c.before[0])), num(thousands(c.after[0])), num(thousands(c.new_instances)),
              num(bytes(c.before[1])), num(bytes(c.after[1])), el("td", { class: "site" }, site ? ownFrame(site.frames)[0] + " " + ownFrame(site.frames)[1] : "")];
          },
          function (c) {
            return el("pre", { class: "stack" }, c.path ? "retained through " + c.path + "\n(" + thousands(c.held_alike) + (c.new_instances ? " of the " + thousands(c.new_instances) + " new ones" : "") + " held this way)" : "no retainer path searched");
          }));
      }
    }
    if (isolate.listeners.length) {
      section.appendChild(el("h2", null, "Listeners (node " + thread + ")"));
      var leaks = isolate.listeners.filter(function (l) { return l.verdict === "growing"; });
      if (leaks.length) {
        section.appendChild(el("p", null, el("span", { class: "bad" }, plural(leaks.length, "listener leak", "listener leaks")), ": listeners added and never removed."));
      }
      section.appendChild(table(
        [["verdict"], ["emitter"], ["event"], ["listeners", "num"], ["added", "num"], ["per second", "num"], ["added at"]],
        isolate.listeners,
        function (l) {
          var top = l.stacks.length ? l.stacks[0][1][0] : null;
          return [el("td", null, el("span", { class: "pill " + l.verdict }, l.verdict)), el("td", { class: "mono" }, l.emitter), el("td", { class: "mono" }, l.event),
            num(thousands(l.listeners_last)), num(thousands(l.added)), num(l.per_s.toFixed(1)),
            el("td", { class: "site" }, top ? el("span", { class: "mono" }, top[0]) : "(no stack)", top ? el("span", { class: "where" }, " " + top[1]) : null)];
        },
        function (l) {
          var box = el("div");
          l.stacks.forEach(function (st) { box.appendChild(el("div", null, plural(st[0], "sampled add", "sampled adds") + ":")); box.appendChild(stackOf(st[1])); });
          return box;
        }));
    }
  }

  function main() {
    var page = JSON.parse(document.getElementById("leakscope-data").textContent);
    var app = document.getElementById("app");
    var root = page.processes[0];
    var header = el("header", { class: "top" },
      el("h1", null, "leakscope report"),
      el("div", { class: "sub" }, processTitle(root) + " \u2014 leakscope " + page.tool_version));
    var tabs = el("nav", { class: "tabs", role: "tablist" });
    if (page.processes.length > 1) header.appendChild(tabs);
    app.appendChild(header);
    var mainEl = el("main");
    app.appendChild(mainEl);
    var sections = [], rendered = [], flames = [], buttons = [];
    page.processes.forEach(function (process, i) {
      var depth = 0;
      for (var p = process.parent; p !== null; p = page.processes[p].parent) depth++;
      var command = process.command.length ? process.command[0].split("/").pop() : "?";
      var button = el("button", { type: "button", role: "tab" }, (depth ? "\u2514 ".repeat(1) : "") + command + " (" + process.pid + ")" +
        (process.started_by !== "run" ? " " + process.started_by : ""));
      button.addEventListener("click", function () { show(i); });
      tabs.appendChild(button);
      buttons.push(button);
      var section = el("section", { class: "process" });
      mainEl.appendChild(section);
      sections.push(section);
      rendered.push(false);
      flames.push(null);
    });
    function show(i) {
      sections.forEach(function (s, j) { s.classList.toggle("active", i === j); buttons[j].classList.toggle("active", i === j); });
      if (!rendered[i]) { flames[i] = renderProcess(page.processes[i], sections[i]); rendered[i] = true; }
      if (flames[i] && flames[i].redraw) flames[i].redraw();
    }
    var first = Number(OPTIONS.process);
    show(first >= 0 && first < page.processes.length ? first : 0);
    // Printing shows every process: draw the ones not seen yet.
    window.addEventListener("beforeprint", function () {
      page.processes.forEach(function (p, i) { if (!rendered[i]) { flames[i] = renderProcess(p, sections[i]); rendered[i] = true; } });
    });
    document.body.setAttribute("data-rendered", "ok");
  }

  try {
    main();
  } catch (error) {
    failed(String(error && error.stack || error));
    throw error;
  }
})();

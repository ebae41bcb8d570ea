// A signature pad: draw with a finger, pen or mouse on a <canvas>; the strokes (lists of
// [x, y] points in canvas pixels) go into a hidden field as JSON. The server builds the
// SVG from these numbers. No library needed.
(function () {
  function setup(pad) {
    var canvas = pad.querySelector("canvas");
    var field = document.getElementById(pad.dataset.field);
    var widthField = document.getElementById(pad.dataset.widthField);
    var heightField = document.getElementById(pad.dataset.heightField);
    var ctx = canvas.getContext("2d");
    var strokes = [], current = null;
    widthField.value = canvas.width; heightField.value = canvas.height;
    ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#111";

    function point(e) {
      var r = canvas.getBoundingClientRect();
      var x = (e.clientX - r.left) * canvas.width / r.width;
      var y = (e.clientY - r.top) * canvas.height / r.height;
      return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
    }
    function save() { field.value = strokes.length ? JSON.stringify(strokes) : ""; pad.classList.toggle("signed", strokes.length > 0); }
    canvas.addEventListener("pointerdown", function (e) {
      e.preventDefault(); canvas.setPointerCapture(e.pointerId);
      current = [point(e)]; strokes.push(current);
      ctx.beginPath(); ctx.moveTo(current[0][0], current[0][1]); ctx.lineTo(current[0][0] + 0.5, current[0][1]); ctx.stroke();
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!current) return;
      e.preventDefault();
      var p = point(e), last = current[current.length - 1];
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) < 1) return;
      current.push(p);
      ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    });
    function end() { if (current) { current = null; save(); } }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    pad.querySelector("[data-clear]").addEventListener("click", function () {
      strokes = []; current = null; ctx.clearRect(0, 0, canvas.width, canvas.height); save();
    });
  }
  document.querySelectorAll("[data-signature-pad]").forEach(setup);
})();

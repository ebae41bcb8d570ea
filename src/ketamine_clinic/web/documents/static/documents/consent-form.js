// The consent form: the patient signs on the pad, or the clinic attests a paper signature.
// Only the part for the chosen method is shown. A static file, not an inline script: the
// Content Security Policy runs scripts from the app's files only.
(function () {
  "use strict";
  var radios = document.querySelectorAll("#consent-form input[name=method]");
  var paperBlock = document.getElementById("paper-block");
  var signatureBlock = document.getElementById("signature-block");
  if (!radios.length || !paperBlock || !signatureBlock) { return; }
  function show() {
    var paper = document.querySelector("#consent-form input[name=method][value=paper]");
    var onPaper = Boolean(paper && paper.checked);
    paperBlock.hidden = !onPaper;
    signatureBlock.hidden = onPaper;
  }
  radios.forEach(function (radio) { radio.addEventListener("change", show); });
  show();
})();

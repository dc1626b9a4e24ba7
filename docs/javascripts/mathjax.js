// MathJax for the formulas of the site: those that pymdownx.arithmatex writes (generic mode,
// \( \) inline and \[ \] display) and the $ and $$ of the notebooks' Markdown cells. MathJax
// leaves code and preformatted text alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
};

// Material's instant navigation swaps pages without a reload: typeset each new page.
document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});

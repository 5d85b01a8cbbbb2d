const ESC = String.fromCharCode(27);

/**
 * Terminal output with each escape character written `<ESC>`, so tests match colour and redraw
 * codes with plain regular expressions (no control character inside a pattern).
 */
export function visible(text: string): string {
  return text.replaceAll(ESC, '<ESC>');
}

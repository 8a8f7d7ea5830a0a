/**
 * The line of a Nix error message that says what failed. Nix 2.8 starts with it
 * (`error: attribute 'x' missing`, then its position); Nix 2.26 starts with a bare `error:`,
 * then `… while calling the 'seq' builtin` frames (the walker's own among them), and says what
 * failed last, in an indented `error: ...` line. Any other text: its first line.
 */
export function nixErrorHeadline(message: string): string {
  const lines = message.split('\n');
  if (lines[0].trim() !== 'error:') return lines[0];
  for (let i = lines.length - 1; i > 0; i--) {
    const line = lines[i].trim();
    if (line.startsWith('error: ')) return line;
  }
  return lines[0];
}

// The CLI reference in the README, generated from the commander program itself so it cannot drift
// (`npm run docs` writes it; test/unit/cli/reference-docs.test.ts fails when the README is stale).
import type { Command } from 'commander';

const HELP_WIDTH = 110;

export function renderCliReference(program: Command): string {
  const sections: string[] = [];
  const visit = (command: Command, path: string[]) => {
    command.configureHelp({ helpWidth: HELP_WIDTH });
    const name = [...path, command.name()].join(' ');
    if (path.length > 0 && command.commands.length === 0) {
      sections.push(`### \`${name}\`\n\n\`\`\`text\n${fullHelp(command).trimEnd()}\n\`\`\``);
    }
    for (const sub of command.commands) visit(sub, [...path, command.name()]);
  };
  visit(program, []);
  return sections.join('\n\n');
}

/** What `--help` prints, text added with addHelpText included (helpInformation() leaves it out). */
function fullHelp(command: Command): string {
  let text = '';
  const saved = command.configureOutput();
  command.configureOutput({
    ...saved,
    writeOut: (chunk: string) => {
      text += chunk;
    },
  });
  command.outputHelp();
  command.configureOutput(saved);
  return text;
}

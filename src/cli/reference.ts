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
      sections.push(`### \`${name}\`\n\n\`\`\`text\n${command.helpInformation().trimEnd()}\n\`\`\``);
    }
    for (const sub of command.commands) visit(sub, [...path, command.name()]);
  };
  visit(program, []);
  return sections.join('\n\n');
}

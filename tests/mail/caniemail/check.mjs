// The caniemail.com check (doiuse-email) of rendered emails, for tests/mail/test_caniemail.py.
//
//   node check.mjs CLIENTS FILE.html [FILE.html ...]
//
// CLIENTS is a comma-separated list of doiuse-email client globs ("gmail.*,outlook.windows").
// Prints one JSON object: for each file, the distinct features a client does not support at all,
// as {"feature": ..., "client": ...} pairs (doiuse-email's errors; its warnings, "partially
// supported", are left to the notes on caniemail.com).
import fs from 'node:fs';
import { doIUseEmail } from 'doiuse-email';

const NOT_SUPPORTED = /^`(.+)` is not supported by `(.+)`$/;
const [clients, ...files] = process.argv.slice(2);
if (!clients || files.length === 0) {
  console.error('usage: node check.mjs CLIENTS FILE.html [FILE.html ...]');
  process.exit(2);
}
const out = {};
for (const file of files) {
  const result = doIUseEmail(fs.readFileSync(file, 'utf8'), { emailClients: clients.split(',') });
  const seen = new Map();
  for (const error of result.errors ?? []) {
    const match = NOT_SUPPORTED.exec(error);
    if (!match) throw new Error(`unexpected doiuse-email message: ${error}`);
    seen.set(error, { feature: match[1], client: match[2] });
  }
  out[file] = [...seen.values()];
}
process.stdout.write(JSON.stringify(out));

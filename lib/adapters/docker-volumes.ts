import { request } from 'node:http';
import { BackupValidatorError, UsageError } from '../core/errors.ts';

const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
/** The engine answers an inspect in milliseconds; a silent socket is no engine. */
const TIMEOUT_MS = 30_000;

/** How to back a volume up without this tool reaching the engine. */
function instead(name: string): string {
  return (
    `on the Docker host, give its folder: --from "$(docker volume inspect -f '{{.Mountpoint}}' ${name})" ` +
    `(as a user that can read it), or stream it through a container: ` +
    `--from 'command:docker run --rm -v ${name}:/volume:ro alpine tar -C /volume -cf - .' --name ${name}.tar`
  );
}

function endpointOf(dockerHost: string): { socketPath: string } | { host: string; port: number } {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const tcp = /^(?:tcp|http):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(dockerHost);
  if (tcp) return { host: tcp[1] as string, port: Number(tcp[2] ?? 2375) };
  throw new UsageError(
    `DOCKER_HOST=${dockerHost} is not supported here (unix:///path/docker.sock or tcp://host:port)`,
    'DOCKER_HOST',
  );
}

/**
 * A Docker volume's mount point, from the engine's API (`GET /volumes/NAME`, what
 * `docker volume inspect` asks), over the socket DOCKER_HOST names (default
 * /var/run/docker.sock). No engine is an infrastructure error (exit 3); no such volume a usage
 * error (exit 2); both say what to run instead.
 */
export async function dockerVolumeMountpoint(name: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dockerHost = env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
  const endpoint = endpointOf(dockerHost);
  let answer: { status: number; body: string };
  try {
    answer = await new Promise((resolve, reject) => {
      const req = request(
        { ...endpoint, method: 'GET', path: `/volumes/${encodeURIComponent(name)}`, timeout: TIMEOUT_MS },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end();
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such socket: Docker is not installed or not running here'
        : code === 'EACCES'
          ? 'permission denied: this user cannot use the Docker socket (add it to the docker group, or run as root)'
          : code === 'ECONNREFUSED'
            ? 'connection refused: the Docker engine is not running'
            : (error as Error).message;
    throw new BackupValidatorError(
      `docker-volume:${name}: no Docker engine answers at ${dockerHost} (${why}). Start Docker or set DOCKER_HOST; or ${instead(name)}`,
      { cause: error },
    );
  }
  let parsed: { Mountpoint?: unknown; message?: unknown } = {};
  try {
    parsed = JSON.parse(answer.body) as typeof parsed;
  } catch {
    // Not JSON: the status says what happened.
  }
  if (answer.status === 404)
    throw new UsageError(
      `docker-volume:${name}: the Docker engine at ${dockerHost} has no such volume${typeof parsed.message === 'string' ? ` (${parsed.message})` : ''}; list them with "docker volume ls"`,
      'from',
    );
  if (answer.status !== 200 || typeof parsed.Mountpoint !== 'string' || parsed.Mountpoint === '')
    throw new BackupValidatorError(
      `docker-volume:${name}: the Docker engine at ${dockerHost} answered ${answer.status} without a mount point${typeof parsed.message === 'string' ? ` (${parsed.message})` : ''}; ${instead(name)}`,
    );
  return parsed.Mountpoint;
}

/** Said when the mount point cannot be read here (Docker Desktop keeps volumes inside its VM). */
export function unreadableMountpoint(name: string, mountpoint: string, why: string): string {
  return `docker-volume:${name}: its mount point ${mountpoint} cannot be read here (${why}); with Docker Desktop volumes live inside its VM. Instead, ${instead(name)}`;
}

import { createHash } from 'node:crypto';
import { CfnElement, Names } from 'aws-cdk-lib';
import { Construct, type IConstruct } from 'constructs';

/**
 * A part of the stack (storage, sandbox, pipeline, triggers, monitoring). Its id is left out of
 * its resources' logical IDs, so that composing the stack from parts did not rename (and so
 * replace) any deployed resource: test/stack/logical-ids.test.ts holds them.
 */
export class StackPart extends Construct {}

/** CDK's own scheme (core/lib/private/uniqueid.ts, not exported), over the path without parts. */
export function stableLogicalId(element: CfnElement): string {
  return uniqueId(stablePath(element));
}

function stablePath(element: CfnElement): string[] {
  const scopes = element.node.scopes;
  const below = scopes.slice(scopes.indexOf(element.stack) + 1);
  return below.filter((s) => !(s instanceof StackPart)).map((s) => s.node.id);
}

/**
 * Some constructs name a child after another construct's path (`Names.nodeUniqueId`: a rule's
 * Lambda permission, an event source mapping). Under `scope`, those named after `named` keep the
 * logical ID they had before `named` moved into a part.
 */
export function keepIdsNamedAfter(scope: IConstruct, named: IConstruct): void {
  const moved = Names.nodeUniqueId(named.node);
  const stable = stableUniqueId(named.node.scope as IConstruct, named.node.id);
  for (const child of scope.node.findAll()) {
    if (!(child instanceof CfnElement)) continue;
    const path = stablePath(child);
    if (path.some((id) => id.includes(moved))) {
      child.overrideLogicalId(uniqueId(path.map((id) => id.replace(moved, stable))));
    }
  }
}

/** What `Names.uniqueId` gives a construct `id` in `scope`, as if the parts were not in its path. */
export function stableUniqueId(scope: IConstruct, id: string): string {
  const path = scope.node.scopes.filter((s) => s.node.id !== '' && !(s instanceof StackPart));
  return uniqueId([...path.map((s) => s.node.id), id]);
}

function uniqueId(path: string[]): string {
  const components = path.filter((c) => c !== 'Default');
  const alphanumeric = (s: string) => s.replace(/[^A-Za-z0-9]/g, '');
  if (components.length === 1 && alphanumeric(components[0] as string).length <= 255) {
    return alphanumeric(components[0] as string);
  }
  const hash = createHash('md5').update(components.join('/')).digest('hex').slice(0, 8).toUpperCase();
  const human: string[] = [];
  for (const c of components) if (human.length === 0 || !human[human.length - 1]?.endsWith(c)) human.push(c);
  return (
    human
      .filter((c) => c !== 'Resource')
      .map(alphanumeric)
      .join('')
      .slice(0, 240) + hash
  );
}

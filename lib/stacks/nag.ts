import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Flattens a CloudFormation value the way cdk-nag 3 names a finding (`<Logical.Arn>/runs/*`). */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const n = node as Record<string, unknown>;
  if (n['Fn::Join']) {
    const [delimiter, items] = n['Fn::Join'] as [string, unknown[]];
    return items.map(flatten).join(delimiter);
  }
  if (n['Fn::Sub']) return flatten(n['Fn::Sub']);
  if (n['Fn::GetAtt']) {
    const [resource, attribute] = n['Fn::GetAtt'] as [unknown, unknown];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (n.Ref) return `<${flatten(n.Ref)}>`;
  return JSON.stringify(node);
}

/**
 * Acknowledges the cdk-nag IAM5 finding for each wildcard resource, one by one (cdk-nag 3 has
 * no prefix matching), so a new wildcard elsewhere is still reported.
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${flatten(stack.resolve(resource))}]`,
      reason,
    });
  }
}

export function acknowledgeWildcardActions(scope: IConstruct, actions: string[], reason: string): void {
  for (const action of actions) {
    Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Action::${action}]`, reason });
  }
}

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

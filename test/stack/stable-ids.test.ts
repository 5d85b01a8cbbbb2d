import { App, CfnResource, Names, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import {
  keepIdsNamedAfter,
  StackPart,
  stableLogicalId,
  stableUniqueId,
} from '../../lib/stacks/stable-ids.ts';

/** Issue 11: the parts of the stack are left out of logical IDs, computed as CDK computes them. */
describe('issue 11: stable IDs for a stack made of parts', () => {
  const app = new App();
  const stack = new Stack(app, 'IdStack');
  const outside = new Construct(stack, 'Group');
  const plain = new CfnResource(outside, 'Thing-1', { type: 'Test::Thing' });
  const part = new StackPart(stack, 'Part');
  const inside = new CfnResource(new Construct(part, 'Group'), 'Thing-1', { type: 'Test::Thing' });
  const single = new CfnResource(part, 'Single', { type: 'Test::Thing' });

  it('gives a resource outside any part the logical ID CDK gives it', () => {
    expect(stableLogicalId(plain)).toBe(stack.getLogicalId(plain));
    expect(stableLogicalId(plain)).toMatch(/^GroupThing1[0-9A-F]{8}$/);
  });

  it('leaves the part out of the ID of a resource inside it', () => {
    expect(stableLogicalId(inside)).toBe(stack.getLogicalId(plain));
    expect(stableLogicalId(single)).toBe('Single');
  });

  it('names a construct inside a part as Names.uniqueId named it outside', () => {
    expect(stableUniqueId(outside, 'Thing-1')).toBe(Names.uniqueId(plain));
    expect(stableUniqueId(part, 'Group')).toBe(Names.uniqueId(outside));
  });

  it('keeps the ID of a resource named after a construct that moved into a part', () => {
    const moved = new Construct(part, 'Target');
    const beforeMove = new Construct(new Stack(new App(), 'IdStack'), 'Target');
    const named = new CfnResource(stack, `Allow${Names.nodeUniqueId(moved.node)}`, { type: 'Test::Thing' });
    keepIdsNamedAfter(stack, moved);
    expect(stack.resolve(named.logicalId)).toBe(
      `Allow${Names.nodeUniqueId(beforeMove.node).replace('IdStack2', 'IdStack')}`,
    );
  });
});

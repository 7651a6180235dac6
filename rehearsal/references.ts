import type { AssemblyStack, CloudAssembly } from './assembly.ts';
import { RehearsalError } from './errors.ts';

/** What a resource stands for locally: its `Ref` value and its `Fn::GetAtt` attributes. */
export interface PhysicalResource {
  ref: string;
  attributes: Record<string, string>;
}

/** Gives the local stand-in of a resource, or undefined when the rehearsal has none for it. */
export type PhysicalLookup = (stack: AssemblyStack, logicalId: string) => PhysicalResource | undefined;

/**
 * Resolves CloudFormation's intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::ImportValue`, `Fn::Join`,
 * `Fn::Sub`, `Fn::Select`, `Fn::Split`) and pseudo parameters in a template value, with every resource
 * standing for its local stand-in. What cannot be resolved is an error naming `where` and the reference.
 */
export class ReferenceResolver {
  readonly #assembly: CloudAssembly;
  readonly #lookup: PhysicalLookup;

  constructor(assembly: CloudAssembly, lookup: PhysicalLookup) {
    this.#assembly = assembly;
    this.#lookup = lookup;
  }

  /** The value with every intrinsic function replaced by what it resolves to. */
  resolve(stack: AssemblyStack, value: unknown, where: string): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(stack, item, where));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [first] = entries;
    if (entries.length === 1 && first && (first[0] === 'Ref' || first[0].startsWith('Fn::'))) {
      return this.#intrinsic(stack, first[0], first[1], where);
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(stack, item, where)]));
  }

  /** The value resolved to a string; anything else is an error naming `where`. */
  resolveString(stack: AssemblyStack, value: unknown, where: string): string {
    const resolved = this.resolve(stack, value, where);
    if (typeof resolved === 'string') return resolved;
    if (typeof resolved === 'number' || typeof resolved === 'boolean') return String(resolved);
    throw new RehearsalError(`${where}: ${JSON.stringify(value)} does not resolve to a string.`);
  }

  #intrinsic(stack: AssemblyStack, name: string, argument: unknown, where: string): unknown {
    switch (name) {
      case 'Ref':
        return this.#ref(stack, String(argument), where);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(argument)
          ? argument.map(String)
          : String(argument).split(/\.(.*)/s);
        return this.#getAtt(stack, logicalId ?? '', attribute ?? '', where);
      }
      case 'Fn::ImportValue':
        return this.#importValue(this.resolveString(stack, argument, where), where);
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        const resolved = this.resolve(stack, parts, where) as unknown[];
        return resolved.map((part) => String(part)).join(separator);
      }
      case 'Fn::Select': {
        const [index, list] = argument as [unknown, unknown];
        const items = this.resolve(stack, list, where) as unknown[];
        return items[Number(this.resolve(stack, index, where))];
      }
      case 'Fn::Split': {
        const [separator, text] = argument as [string, unknown];
        return this.resolveString(stack, text, where).split(separator);
      }
      case 'Fn::Sub':
        return this.#sub(stack, argument, where);
      default:
        throw new RehearsalError(
          `${where}: the rehearsal cannot resolve ${name} (${JSON.stringify(argument)}).`,
        );
    }
  }

  #ref(stack: AssemblyStack, name: string, where: string): string {
    switch (name) {
      case 'AWS::Region':
        return stack.region;
      case 'AWS::AccountId':
        return stack.account;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return stack.name;
      case 'AWS::NoValue':
        return '';
    }
    const physical = this.#lookup(stack, name);
    if (!physical) {
      throw new RehearsalError(
        `${where}: Ref ${name} names no resource of ${stack.name} the rehearsal stands in for.`,
      );
    }
    return physical.ref;
  }

  #getAtt(stack: AssemblyStack, logicalId: string, attribute: string, where: string): string {
    const value = this.#lookup(stack, logicalId)?.attributes[attribute];
    if (value === undefined) {
      throw new RehearsalError(
        `${where}: Fn::GetAtt ${logicalId}.${attribute} of ${stack.name} has no local stand-in.`,
      );
    }
    return value;
  }

  #importValue(exportName: string, where: string): unknown {
    for (const stack of this.#assembly.stacks) {
      for (const [outputId, output] of Object.entries(stack.template.Outputs ?? {})) {
        if (!output.Export) continue;
        const name = this.resolveString(stack, output.Export.Name, `${stack.name} output ${outputId}`);
        if (name === exportName) return this.resolve(stack, output.Value, `${stack.name} output ${outputId}`);
      }
    }
    throw new RehearsalError(
      `${where}: Fn::ImportValue ${exportName} is exported by no stack of the assembly.`,
    );
  }

  #sub(stack: AssemblyStack, argument: unknown, where: string): string {
    const [text, variables] = Array.isArray(argument)
      ? (argument as [string, Record<string, unknown>])
      : [String(argument), {}];
    return text.replace(/\$\{([^}!]+)\}/g, (_whole, expression: string) => {
      if (expression in variables) return this.resolveString(stack, variables[expression], where);
      const dot = expression.indexOf('.');
      if (dot > 0 && !expression.startsWith('AWS::')) {
        return this.#getAtt(stack, expression.slice(0, dot), expression.slice(dot + 1), where);
      }
      return this.#ref(stack, expression, where);
    });
  }
}

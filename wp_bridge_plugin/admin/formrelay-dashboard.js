/**
 * FormRelay dashboard: wires the sidecar's view markup (docs/dashboard.md) to
 * the plugin's REST routes (formrelay/v1/...). Plain JavaScript, no build step.
 *
 * - button[data-formrelay-action="retry|restart|cancel"][data-job]: POST jobs/{id}/{action}
 *   (restart asks to confirm first); button[data-formrelay-action="resume"]: POST resume;
 * - form[data-formrelay-bulk]: POST jobs/retry {"ids": [...]} with its checked job[] boxes;
 * - button[data-formrelay-bulk-all][data-filter]: POST jobs/retry {"all_failed": true, "filter": ...};
 * - button[data-formrelay-reveal="ID"]: POST jobs/{ID}/fields, each value into the
 *   [data-field-id] cells and each document's original file name into the
 *   [data-document-id] cells, as text (never as HTML);
 * - [data-formrelay-refresh="overview"]: refreshed from GET view/overview every few seconds.
 *
 * After a change the current view is fetched again (GET view/{name}) and swapped in.
 * Errors are shown in a notice at the top of the page.
 *
 * @package FormRelay_Bridge
 */
( function () {
	'use strict';

	var config = window.formrelayDashboard;
	if ( ! config || ! config.root ) {
		return;
	}
	var i18n = config.i18n || {};
	var refreshing = false;
	var outageNotice = null; // The one notice shown while the overview cannot be refreshed.

	function format( template ) {
		var args = Array.prototype.slice.call( arguments, 1 );
		return String( template ).replace( /%(\d+)\$s/g, function ( match, n ) {
			var value = args[ Number( n ) - 1 ];
			return value === undefined ? match : String( value );
		} );
	}

	function restUrl( route, params ) {
		var url = config.root + route;
		var query = [];
		Object.keys( params || {} ).forEach( function ( name ) {
			var value = params[ name ];
			if ( value !== undefined && value !== null && value !== '' ) {
				query.push( encodeURIComponent( name ) + '=' + encodeURIComponent( value ) );
			}
		} );
		if ( query.length ) {
			url += ( url.indexOf( '?' ) === -1 ? '?' : '&' ) + query.join( '&' );
		}
		return url;
	}

	/** A fresh wp_rest nonce (WordPress' own admin-ajax action), for a page left open a long time. */
	function renewNonce() {
		if ( ! config.ajaxUrl ) {
			return Promise.reject( new Error( 'no ajaxUrl' ) );
		}
		return window.fetch( config.ajaxUrl + '?action=rest-nonce', { credentials: 'same-origin' } ).then( function ( response ) {
			return response.text().then( function ( text ) {
				if ( ! response.ok || ! /^[0-9a-f]+$/.test( text.trim() ) ) {
					throw new Error( 'HTTP ' + response.status );
				}
				config.nonce = text.trim();
			} );
		} );
	}

	/**
	 * A REST call; resolves with the parsed JSON, rejects with an Error whose message is for people.
	 * An expired nonce is renewed once.
	 */
	function api( method, route, params, body ) {
		return request( method, route, params, body ).catch( function ( error ) {
			if ( error.status !== 403 || ! error.data || error.data.code !== 'rest_cookie_invalid_nonce' ) {
				throw error;
			}
			return renewNonce().then( function () {
				return request( method, route, params, body );
			}, function () {
				throw error;
			} );
		} );
	}

	function request( method, route, params, body ) {
		var options = {
			method: method,
			credentials: 'same-origin',
			headers: { 'X-WP-Nonce': config.nonce, Accept: 'application/json' }
		};
		if ( body !== undefined ) {
			options.headers[ 'Content-Type' ] = 'application/json';
			options.body = JSON.stringify( body );
		}
		return window.fetch( restUrl( route, params ), options ).then( function ( response ) {
			return response.text().then( function ( text ) {
				var data = null;
				try {
					data = text ? JSON.parse( text ) : null;
				} catch ( e ) {
					data = null;
				}
				if ( ! response.ok ) {
					var message = ( data && ( data.error || data.message ) ) || ( 'HTTP ' + response.status );
					if ( data && data.code === 'formrelay_unreachable' && data.data ) {
						message += '. ' + format(
							i18n.unreachable || 'Last worker heartbeat: %1$s. Submissions waiting: %2$s.',
							data.data.last_heartbeat ? data.data.last_heartbeat.replace( 'T', ' ' ).slice( 0, 19 ) + ' UTC' : ( i18n.never || 'never' ),
							data.data.waiting === null || data.data.waiting === undefined ? '?' : data.data.waiting
						);
					}
					var error = new Error( message );
					error.status = response.status;
					error.data = data;
					throw error;
				}
				return data;
			} );
		} );
	}

	// ------------------------------------------------------------------ notices.
	function messages() {
		var box = document.getElementById( 'formrelay-messages' );
		if ( ! box ) {
			box = document.createElement( 'div' );
			box.id = 'formrelay-messages';
			box.setAttribute( 'aria-live', 'polite' );
		}
		if ( ! box.parentNode ) {
			placeMessages( box );
		}
		return box;
	}

	/** Put the notices box under the page's heading (the view's `hr.wp-header-end`). */
	function placeMessages( box ) {
		var wrap = document.querySelector( '.formrelay-dashboard' ) || document.body;
		var end = wrap.querySelector( '.wp-header-end' );
		if ( end && end.parentNode ) {
			end.parentNode.insertBefore( box, end.nextSibling );
		} else {
			wrap.insertBefore( box, wrap.firstChild );
		}
	}

	function notice( kind, text ) {
		var box = messages();
		var div = document.createElement( 'div' );
		div.className = 'notice inline is-dismissible formrelay-js-notice notice-' + kind;
		var p = document.createElement( 'p' );
		p.textContent = text;
		div.appendChild( p );
		var close = document.createElement( 'button' );
		close.type = 'button';
		close.className = 'notice-dismiss';
		var label = document.createElement( 'span' );
		label.className = 'screen-reader-text';
		label.textContent = i18n.dismiss || 'Dismiss this notice.';
		close.appendChild( label );
		close.addEventListener( 'click', function () {
			div.parentNode.removeChild( div );
		} );
		div.appendChild( close );
		box.insertBefore( div, box.firstChild );
		while ( box.children.length > 3 ) {
			box.removeChild( box.lastChild );
		}
		return div;
	}

	function showError( error ) {
		return notice( 'error', ( i18n.failed || 'The request failed:' ) + ' ' + ( error && error.message ? error.message : String( error ) ) );
	}

	// ------------------------------------------------------------- view refresh.
	function viewParams() {
		return config.params || {};
	}

	/** Replace `target`'s content with the content of the `selector` element of `html` (or all of it). */
	function swap( target, html, selector ) {
		var template = document.createElement( 'template' );
		template.innerHTML = html; // Filtered by wp_kses() on the server; nothing in a template runs.
		var fresh = selector ? template.content.querySelector( selector ) : null;
		var nodes = Array.prototype.slice.call( ( fresh || template.content ).childNodes );
		var box = document.getElementById( 'formrelay-messages' );
		if ( box && target.contains( box ) ) {
			box.parentNode.removeChild( box ); // Kept: it holds the latest notices.
		}
		target.innerHTML = '';
		nodes.forEach( function ( node ) {
			target.appendChild( document.importNode( node, true ) );
		} );
		if ( box && ! box.parentNode ) {
			placeMessages( box );
		}
	}

	function reloadView() {
		var container = document.getElementById( 'formrelay-view' );
		if ( ! container ) {
			window.location.reload();
			return Promise.resolve();
		}
		return api( 'GET', 'view/' + ( config.view || 'overview' ), viewParams() ).then( function ( data ) {
			if ( data && typeof data.html === 'string' ) {
				swap( container, data.html, null );
			}
		} );
	}

	function refreshOverview() {
		var target = document.querySelector( '[data-formrelay-refresh="overview"]' );
		if ( ! target || refreshing || document.hidden ) {
			return;
		}
		refreshing = true;
		api( 'GET', 'view/overview', {} ).then( function ( data ) {
			refreshing = false;
			if ( outageNotice && outageNotice.parentNode ) {
				outageNotice.parentNode.removeChild( outageNotice );
			}
			outageNotice = null;
			var current = document.querySelector( '[data-formrelay-refresh="overview"]' );
			if ( current && data && typeof data.html === 'string' ) {
				swap( current, data.html, '[data-formrelay-refresh="overview"]' );
			}
		} ).catch( function ( error ) {
			refreshing = false;
			if ( ! outageNotice ) {
				outageNotice = showError( error ); // One notice per outage, not one every few seconds.
			}
		} );
	}

	// ------------------------------------------------------------------ actions.
	function busy( element, on ) {
		if ( element ) {
			element.disabled = on;
			element.setAttribute( 'aria-busy', on ? 'true' : 'false' );
		}
	}

	function afterChange( element, message ) {
		busy( element, false );
		notice( 'success', message );
		return reloadView().catch( showError );
	}

	function jobAction( button ) {
		var action = button.getAttribute( 'data-formrelay-action' );
		if ( action === 'resume' ) {
			busy( button, true );
			api( 'POST', 'resume', null, {} ).then( function ( data ) {
				afterChange( button, data && data.resumed ? i18n.resumed : i18n.notPaused );
			} ).catch( function ( error ) {
				busy( button, false );
				showError( error );
			} );
			return;
		}
		if ( [ 'retry', 'restart', 'cancel' ].indexOf( action ) === -1 ) {
			return;
		}
		var id = parseInt( button.getAttribute( 'data-job' ), 10 );
		if ( ! ( id > 0 ) ) {
			return;
		}
		if ( action === 'restart' && ! window.confirm( i18n.confirmRestart ) ) {
			return;
		}
		busy( button, true );
		api( 'POST', 'jobs/' + id + '/' + action, null, {} ).then( function ( data ) {
			var job = data && data.job ? data.job : null;
			afterChange( button, job ? format( i18n.jobStatus, job.id, job.status ) : i18n.done );
		} ).catch( function ( error ) {
			busy( button, false );
			showError( error );
		} );
	}

	// A retry by filter goes a batch per request: call again after the last job while `more`.
	function bulkRetry( body, trigger, done ) {
		done = done || { retried: 0, skipped: 0 };
		busy( trigger, true );
		api( 'POST', 'jobs/retry', null, body ).then( function ( data ) {
			done.retried += data ? data.retried : 0;
			done.skipped += data ? data.skipped : 0;
			if ( data && data.more && body.all_failed ) {
				body.after = data.after;
				bulkRetry( body, trigger, done );
				return;
			}
			afterChange( trigger, format( i18n.bulkResult, done.retried, done.skipped ) );
		} ).catch( function ( error ) {
			busy( trigger, false );
			showError( error );
		} );
	}

	function bulkSelected( form, submitter ) {
		var ids = [];
		form.querySelectorAll( 'input[name="job[]"]:checked' ).forEach( function ( box ) {
			var id = parseInt( box.value, 10 );
			if ( id > 0 ) {
				ids.push( id );
			}
		} );
		if ( ! ids.length ) {
			notice( 'warning', i18n.noneSelected );
			return;
		}
		bulkRetry( { ids: ids }, submitter || form.querySelector( '[type="submit"]' ) );
	}

	function bulkAll( button ) {
		var filter = {};
		try {
			filter = JSON.parse( button.getAttribute( 'data-filter' ) || '{}' ) || {};
		} catch ( e ) {
			filter = {};
		}
		bulkRetry( { all_failed: true, filter: filter, after: 0 }, button );
	}

	function fieldText( value ) {
		if ( value === null || value === undefined ) {
			return '';
		}
		return typeof value === 'object' ? JSON.stringify( value ) : String( value );
	}

	function reveal( button ) {
		var id = parseInt( button.getAttribute( 'data-formrelay-reveal' ), 10 );
		if ( ! ( id > 0 ) ) {
			return;
		}
		busy( button, true );
		api( 'POST', 'jobs/' + id + '/fields', null, {} ).then( function ( data ) {
			var scope = button.closest( '#formrelay-view' ) || document;
			( data && data.fields ? data.fields : [] ).forEach( function ( field ) {
				scope.querySelectorAll( '[data-field-id]' ).forEach( function ( cell ) {
					if ( cell.getAttribute( 'data-field-id' ) === String( field.id ) ) {
						cell.textContent = fieldText( field.value );
						cell.classList.add( 'formrelay-revealed' );
					}
				} );
			} );
			( data && data.documents ? data.documents : [] ).forEach( function ( doc ) {
				scope.querySelectorAll( '[data-document-id]' ).forEach( function ( cell ) {
					if ( cell.getAttribute( 'data-document-id' ) === String( doc.id ) ) {
						cell.textContent = fieldText( doc.name );
						cell.classList.add( 'formrelay-revealed' );
					}
				} );
			} );
			button.hidden = true;
		} ).catch( function ( error ) {
			busy( button, false );
			showError( error );
		} );
	}

	// ------------------------------------------------------------------- wiring.
	document.addEventListener( 'click', function ( event ) {
		var target = event.target instanceof Element ? event.target : null;
		if ( ! target ) {
			return;
		}
		var button = target.closest( 'button[data-formrelay-action]' );
		if ( button ) {
			event.preventDefault();
			jobAction( button );
			return;
		}
		button = target.closest( 'button[data-formrelay-bulk-all]' );
		if ( button ) {
			event.preventDefault();
			bulkAll( button );
			return;
		}
		button = target.closest( 'button[data-formrelay-reveal]' );
		if ( button ) {
			event.preventDefault();
			reveal( button );
		}
	} );

	document.addEventListener( 'submit', function ( event ) {
		var form = event.target instanceof Element ? event.target.closest( 'form[data-formrelay-bulk]' ) : null;
		if ( form ) {
			event.preventDefault();
			bulkSelected( form, event.submitter || null );
		}
	} );

	var initial = document.getElementById( 'formrelay-messages' );
	if ( initial ) {
		placeMessages( initial );
	}
	window.setInterval( refreshOverview, config.refreshMs || 5000 );
}() );
